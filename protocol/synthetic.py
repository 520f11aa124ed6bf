"""Synthetic site inventories of any size, for benchmarks and the simulated MPP day.

text = synthetic_site(counters=100, services=20, kiosks=16, displays=20, port=1883)
site = parse_site(text)
"""

from __future__ import annotations

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: they read like 1, 0


def synthetic_site(
    *,
    counters: int = 60,
    services: int = 20,
    kiosks: int = 4,
    displays: int = 6,
    port: int = 1883,
    site_id: str = "mpp-synthetic",
    database: str = "mpp-hub.sqlite",
    quota: int = 999,
    mqtt_version: int = 5,
    transfers: bool = False,
    unprinted_hold_s: float = 0,
    friday_pause: bool = False,
) -> str:
    """The TOML text of an always-open site; counter n serves services n and n+1 (mod S)
    and, with `transfers`, may transfer to service n+2; with `friday_pause`, the Friday
    prayer pause (11:30-13:00, kiosks go on issuing) and officers' break lengths."""
    if services > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} services (one letter each)")
    out = [
        f'[site]\nid = "{site_id}"\nname = "MPP Sintetis"\ntimezone = "Asia/Makassar"\n',
        "[site.hours]\n"
        + "".join(
            f'{d} = "00:00-24:00"\n' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        ),
        f"[broker]\nport = {port}\nmqtt_version = {mqtt_version}\n",
        f'[hub]\ndatabase = "{database}"\nunprinted_hold_s = {unprinted_hold_s}\n'
        + ("break_minutes = { istirahat = 30, sholat = 20, rapat = 45 }\n" if friday_pause else ""),
        '[time_classes.fast]\nwithin = "3h"\n[time_classes.long]\nwithin = "3d"\n',
        '[agencies.dinas]\nname = "Dinas Contoh"\nshort = "Dinas"\n',
    ]
    if friday_pause:
        out.append(
            '[pauses.jumat]\nname = { id = "Istirahat sholat Jumat", en = "Friday prayer" }\n'
            'days = ["fri"]\ntime = "11:30-13:00"\nkeep_issuing = true\n'
        )
    codes = [f"s{i:02d}" for i in range(1, services + 1)]
    for i, code in enumerate(codes):
        out.append(
            f'[services.{code}]\nagency = "dinas"\nprefix = "{LETTERS[i]}"\n'
            f'name = {{ id = "Layanan {i + 1}", en = "Service {i + 1}" }}\n'
            f'time_class = "{"fast" if i % 3 else "long"}"\ndaily_quota = {quota}\n'
            f"avg_minutes = {5 + (i % 4) * 5}\n"
        )
    for n in range(1, counters + 1):
        first, second = codes[(n - 1) % services], codes[n % services]
        transfer = f'transfer_to = ["{codes[(n + 1) % services]}"]\n' if transfers else ""
        out.append(
            f'[counters.{n}]\nservices = ["{first}", "{second}"]\nzone = "lobby"\n{transfer}'
        )
    out.append('[zones.lobby]\nkind = "lobby"\nname = "Ruang Tunggu"\n')
    out.append('[zones.canteen]\nkind = "canteen"\nname = "Kantin"\n')
    for k in range(1, kiosks + 1):
        out.append(
            f'[devices.kiosk-{k:02d}]\nrole = "kiosk"\nzone = "lobby"\n'
            'screen = { width = 1080, height = 1920 }\nprinter = { connection = "dummy" }\n'
        )
    for n in range(1, counters + 1):
        out.append(
            f'[devices.caller-{n:03d}]\nrole = "caller"\ncounter = {n}\n'
            "buttons = { next = 17, recall = 27, skip = 22, open_close = 24 }\n"
            "rating = { very_satisfied = 5, satisfied = 6, dissatisfied = 13, "
            "very_dissatisfied = 19 }\n"
        )
    for d in range(1, displays + 1):
        zone = "canteen" if d % 3 == 0 else "lobby"
        out.append(f'[devices.tv-{d:02d}]\nrole = "display"\nzone = "{zone}"\n')
    return "\n".join(out)
