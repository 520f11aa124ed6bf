"""The thermal printer: ESC/POS bytes read back from escpos Dummy/File/Network printers."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from escpos.printer import Dummy, Usb
from PIL import Image

from kiosk.errors import KioskConfigError, PaperOut, PrinterOffline, PrintFailed
from kiosk.printer import TicketPrinter, build_escpos, parse_paper_status, render
from kiosk.ticket import Logo, ticket_layout, ticket_url
from protocol.messages import TicketInfo
from protocol.site import Printer, load_site
from tests.conftest import EXAMPLE
from tests.kiosk.conftest import JammedPrinter, PrinterServer
from tests.kiosk.escpos_bytes import parse
from tests.timing import wait_until

SITE = load_site(EXAMPLE)
TM_T20II = Printer(connection="dummy", profile="TM-T20II")
NARROW = Printer(connection="dummy", profile="default", width_mm=58)
INFO = TicketInfo(
    id=3,
    number="H007",
    service="skck",
    issued_at=1795420800.0,
    token="tok-123",
    people_ahead=2,
    est_wait_s=1200,
)
LAYOUT = ticket_layout(SITE, INFO, "id")


def test_ticket_bytes_hold_number_service_qr_and_cut() -> None:
    printed = parse(render(LAYOUT, TM_T20II))
    assert printed.inits == 1
    number = printed.find("H007")
    assert (number.width, number.height) == (6, 6) and number.bold and number.align == 1
    assert max(line.width for line in printed.lines) == 6  # nothing is printed larger
    service = printed.find("SKCK")
    assert (service.width, service.height) == (2, 2) and service.bold
    assert printed.find("Kepolisian Resor Banjarbaru").align == 1
    assert printed.find("Biaya: Rp 30.000").align == 0
    assert printed.find("Perkiraan waktu tunggu: ± 20 menit")  # '±' survives the code page
    assert printed.qr_payloads == ["http://192.168.10.2:8080/t/tok-123"] and printed.qr_prints == 1
    assert len(printed.cuts) == 1
    assert printed.cuts[0] > len(render(LAYOUT, TM_T20II)) - 5  # the cut is the last thing
    assert printed.status_requests == 0


def test_narrow_paper_wraps_to_its_columns() -> None:
    printed = parse(render(LAYOUT, NARROW))
    for line in printed.lines:
        assert len(line.text) * line.width <= 32, line
    assert printed.find("H007").width == 6
    assert "Simpan tiket ini sampai layanan" in " ".join(printed.texts())
    assert len(printed.cuts) == 1 and printed.qr_prints == 1


GENERIC_58 = [
    Printer(connection="dummy", profile="default", width_mm=58),
    Printer(connection="dummy", profile="POS-5890", width_mm=58),  # no native QR
    Printer(connection="dummy", profile="ZJ-5870", width_mm=58),  # no native QR
]
UNITS = {"jam", "menit", "hari", "hour", "hours", "min", "day", "days", "WITA", "WIB", "WIT"}


def _every_ticket(spec: Printer):
    """(service, lang, printed lines) of a ticket of every example service in id and en."""
    for code, service in SITE.services.items():
        for lang in ("id", "en"):
            info = INFO.model_copy(update={"service": code, "number": f"{service.prefix}012"})
            yield code, lang, parse(render(ticket_layout(SITE, info, lang), spec)).lines


@pytest.mark.parametrize("spec", [*GENERIC_58, TM_T20II], ids=lambda s: f"{s.width_mm}mm")
def test_lines_break_at_spaces_only_never_between_a_value_and_its_unit(spec: Printer) -> None:
    columns = 32 if spec.width_mm == 58 else 48
    for code, lang, lines in _every_ticket(spec):
        texts = [line.text for line in lines]
        for line in lines:
            assert len(line.text) * line.width <= columns, (code, lang, line)
        for before, after in itertools.pairwise(texts):
            words = after.split()
            assert not (words and words[0] in UNITS), (code, lang, before, after)
            assert not re.search(r"\w-$", before), (code, lang, before, after)  # 'KTP-' 'el'
            assert not (before.endswith(("±", "Rp")) and after[:1].isdigit()), (before, after)


def test_long_values_go_under_their_label_on_58mm() -> None:
    printed = parse(render(LAYOUT, NARROW))
    texts = printed.texts()
    at = texts.index("Waktu layanan:")
    assert texts[at + 1] == "  Selesai maks. 3 jam"
    assert "Biaya: Rp 30.000" in texts  # what fits stays on one line
    ktp = INFO.model_copy(update={"service": "ktp", "number": "A012"})
    english = parse(render(ticket_layout(SITE, ktp, "en"), TM_T20II)).texts()
    assert "e-ID card (KTP-el)" in english  # the name is not broken at its hyphen


@pytest.mark.parametrize("spec", GENERIC_58, ids=lambda s: s.profile)
def test_the_number_is_one_line_as_large_as_the_paper_allows(spec: Printer) -> None:
    for number in ("A001", "H999", "AB999"):
        info = INFO.model_copy(update={"number": number})
        line = parse(render(ticket_layout(SITE, info, "id"), spec)).find(number)
        assert line.text == number and line.width == line.height
        assert len(number) * line.width <= 32 < len(number) * (line.width + 1) or line.width == 6


@pytest.mark.parametrize("profile", ["POS-5890", "ZJ-5870"])
def test_a_58mm_printer_without_native_qr_gets_the_qr_as_an_image(profile: str) -> None:
    import qrcode

    spec = Printer(connection="dummy", profile=profile, width_mm=58)
    data = render(LAYOUT, spec)
    printed = parse(data)
    assert printed.qr_payloads == [] and printed.qr_prints == 0  # no GS ( k it cannot print
    assert len(printed.images) == 1
    width, height = printed.images[0]
    assert width <= 384
    # The raster is the QR code of the ticket's URL: read each module's centre dot.
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=5, border=1)
    code.add_data(ticket_url(SITE, INFO.token))
    code.make(fit=True)
    modules = code.get_matrix()
    assert height == len(modules) * 5
    row_bytes = width // 8
    raster = printed.rasters[0]
    for r, row in enumerate(modules):
        for c, dark in enumerate(row):
            y, x = r * 5 + 2, c * 5 + 2
            bit = raster[y * row_bytes + x // 8] >> (7 - x % 8) & 1
            assert bit == int(dark), (r, c)
    align = data.rfind(b"\x1ba", 0, data.find(b"\x1dv0"))
    assert data[align + 2] == 1  # centred on the paper


def test_logo_is_printed_as_a_raster_image_fitting_the_paper(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (1200, 300), "navy").save(logo)
    printed = parse(render([Logo(logo), *LAYOUT], TM_T20II))
    assert len(printed.images) == 1
    width, height = printed.images[0]
    assert width <= 576 and height <= 160
    missing = parse(render([Logo(tmp_path / "missing.png"), *LAYOUT], TM_T20II))
    assert missing.images == [] and missing.find("H007")  # the ticket still prints


def test_dummy_printer_gets_the_rendered_bytes_in_one_write() -> None:
    device = Dummy(profile="TM-T20II")
    printer = TicketPrinter(device, TM_T20II)
    assert printer.print_ticket(LAYOUT) == "ok"
    assert device.output == render(LAYOUT, TM_T20II)
    assert len(device._output_list) == 1
    assert printer.status() == "unknown"  # a Dummy cannot be asked, and is not sent a query
    assert device.output == render(LAYOUT, TM_T20II)


def test_file_printer_writes_the_same_bytes(tmp_path: Path) -> None:
    spec = Printer(connection="file", path=str(tmp_path / "lp0"), profile="TM-T20II")
    printer = TicketPrinter.from_inventory(spec)
    printer.print_ticket(LAYOUT)
    printer.close()
    assert (tmp_path / "lp0").read_bytes() == render(LAYOUT, spec)


def test_missing_file_printer_is_offline_and_recovers(tmp_path: Path) -> None:
    spec = Printer(connection="file", path=str(tmp_path / "no-dir" / "lp0"))
    printer = TicketPrinter.from_inventory(spec)
    with pytest.raises(PrinterOffline, match=r"no-dir/lp0.*cannot connect"):
        printer.print_ticket(LAYOUT)
    assert printer.last_status == "offline"
    (tmp_path / "no-dir").mkdir()  # the technician plugs the printer back in
    assert printer.print_ticket(LAYOUT) == "ok"
    printer.close()
    assert parse((tmp_path / "no-dir" / "lp0").read_bytes()).find("H007")


def test_write_error_mid_ticket_is_print_failed() -> None:
    printer = TicketPrinter(JammedPrinter(profile="TM-T20II"), TM_T20II)
    with pytest.raises(PrintFailed, match=r"failed part-way.*Input/output error"):
        printer.print_ticket(LAYOUT)
    assert printer.last_status == "error"


def test_network_printer_prints_and_reports_paper(printer_server) -> None:
    server: PrinterServer = printer_server(status=b"\x12")
    spec = Printer(connection="network", host="127.0.0.1", port=server.port, timeout_s=2)
    printer = TicketPrinter.from_inventory(spec)
    assert printer.status() == "ok"
    assert printer.print_ticket(LAYOUT) == "ok"
    assert printer.can_query
    printer.close()
    expected = render(LAYOUT, spec)
    assert wait_until(lambda: expected in bytes(server.received))
    server.status = b"\x1e"  # near end of the roll
    assert printer.status() == "paper_low"
    printer.close()


def test_paper_out_stops_before_the_ticket_is_sent(printer_server) -> None:
    server: PrinterServer = printer_server(status=b"\x72")
    spec = Printer(connection="network", host="127.0.0.1", port=server.port)
    printer = TicketPrinter.from_inventory(spec)
    with pytest.raises(PaperOut, match="out of paper; load a new roll"):
        printer.print_ticket(LAYOUT)
    time.sleep(0.1)
    assert b"H007" not in bytes(server.received)
    assert printer.last_status == "paper_out"
    printer.close()


def test_silent_printer_status_is_bounded_and_printing_goes_on(printer_server) -> None:
    server: PrinterServer = printer_server(status=None)
    spec = Printer(connection="network", host="127.0.0.1", port=server.port, timeout_s=3)
    printer = TicketPrinter.from_inventory(spec, status_timeout=0.2)
    started = time.monotonic()
    assert printer.status() == "unknown"
    assert time.monotonic() - started < 1.5  # far below the connection timeout of 3 s
    assert printer.print_ticket(LAYOUT) == "ok"
    printer.close()
    assert wait_until(lambda: b"H007" in bytes(server.received))


class ScriptedStatusPrinter(Dummy):
    """An escpos Dummy that answers paper-status queries from a script (b"": silence)."""

    def __init__(self, answers: list[bytes], **kwargs) -> None:
        super().__init__(**kwargs)
        self.answers = list(answers)

    def _read(self) -> bytes:
        answer = self.answers.pop(0) if self.answers else b""
        if not answer:
            raise TimeoutError("no answer")
        return answer


def test_a_printer_that_stops_answering_is_offline_and_its_ticket_is_not_printed(
    printer_server,
) -> None:
    server: PrinterServer = printer_server(status=b"\x12")
    spec = Printer(connection="network", host="127.0.0.1", port=server.port, timeout_s=2)
    printer = TicketPrinter.from_inventory(spec, status_timeout=0.2)
    assert printer.status() == "ok"
    server.status = None  # switched off: nothing answers any more
    assert printer.status() == "offline"
    with pytest.raises(PrinterOffline, match="check power and cable"):
        printer.print_ticket(LAYOUT)
    time.sleep(0.1)
    assert b"H007" not in bytes(server.received)
    server.status = b"\x12"  # switched on again
    assert printer.print_ticket(LAYOUT) == "ok"
    printer.close()
    # Silent only after the ticket was sent: it cannot count as printed either.
    silent_after = TicketPrinter(ScriptedStatusPrinter([b"\x12", b"\x12"]), TM_T20II)
    assert silent_after.status() == "ok"
    with pytest.raises(PrinterOffline, match="stopped answering when the ticket was sent"):
        silent_after.print_ticket(LAYOUT)


def test_a_driver_failing_half_way_drops_the_connection() -> None:
    class BuggyDriver(Dummy):
        closed = 0

        def _raw(self, msg: bytes) -> None:
            super()._raw(msg[: len(msg) // 2])
            raise KeyError("driver bug")

        def close(self) -> None:
            BuggyDriver.closed += 1

    printer = TicketPrinter(BuggyDriver(profile="TM-T20II"), TM_T20II)
    with pytest.raises(PrintFailed, match=r"driver failed part-way \(KeyError"):
        printer.print_ticket(LAYOUT)
    assert BuggyDriver.closed == 1 and printer.last_status == "error"


def test_unreachable_network_printer_is_offline(printer_server) -> None:
    server: PrinterServer = printer_server()
    port = server.port
    server.close()  # nothing listens there any more
    spec = Printer(connection="network", host="127.0.0.1", port=port, timeout_s=1)
    printer = TicketPrinter.from_inventory(spec)
    assert printer.status() == "offline"
    with pytest.raises(PrinterOffline, match=f"127.0.0.1:{port}"):
        printer.print_ticket(LAYOUT)


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(KioskConfigError, match="'TM-XYZ' is not in python-escpos"):
        build_escpos(Printer(connection="dummy", profile="TM-XYZ"))


def test_usb_printer_needs_pyusb() -> None:
    spec = SITE.devices["kiosk-1"].printer
    if Usb.is_usable():
        assert isinstance(build_escpos(spec), Usb)
    else:
        with pytest.raises(KioskConfigError, match=r"python-escpos\[usb\]"):
            build_escpos(spec)


def test_paper_status_bytes() -> None:
    assert parse_paper_status(b"") == "unknown"
    assert parse_paper_status(b"\x12") == "ok"
    assert parse_paper_status(b"\x1e") == "paper_low"
    assert parse_paper_status(b"\x72") == "paper_out"
    assert parse_paper_status(b"\x7e") == "paper_out"
