"""What the site's web app (web/) and the region's (region/web/) share: access marks, CSRF,
login throttling and safe headers (`security`), server-side SVG charts (`charts`), and CSV that
opens safely in a spreadsheet (`export`). The hub may use `export`; nothing here imports web/
or region/."""
