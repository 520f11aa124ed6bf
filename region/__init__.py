"""The regional tier: every site's history in PostgreSQL, and the regional web (all sites,
reports, the satisfaction index per service unit). See docs/region.md."""
