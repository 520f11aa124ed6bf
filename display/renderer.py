"""The pygame edge: draws a zone's scene on the TV and plays sounds on its speakers.

The only module that imports pygame (lazily, so `import display` works without it). The
renderer redraws only the regions whose content changed since the last frame, and caches
rendered text; the mixer player plays WAV files one after another for the announcer.

    renderer = Renderer(lambda w, h: zone_layout("lobby", w, h, counters=30, services=20),
                        size=(1920, 1080), plan=VideoPlan(("dummy",), False))
    renderer.open()
    renderer.render(scene)          # names of the regions redrawn
    renderer.save_png(Path("lobby.png"))
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from display.errors import AudioError, ScreenError
from display.layout import Box, Layout, Part, Region
from display.scene import Content, Item, Scene
from display.video import VideoPlan

log = logging.getLogger("mpp.display")

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
YELLOW: Color = (255, 212, 0)
INK_ON_HIGHLIGHT: Color = (12, 24, 44)
BACKGROUNDS: dict[str, Color] = {
    "screen": (8, 24, 46),
    "header": (14, 44, 84),
    "panel": (17, 39, 71),
    "tile": (22, 50, 92),
    "tile-closed": (30, 36, 48),
    "call": (19, 64, 118),
    "highlight": YELLOW,
    "ticker": (5, 16, 32),
    "missing": (40, 62, 96),
}
# style -> (bold, colour)
STYLES: dict[str, tuple[bool, Color]] = {
    "title": (True, WHITE),
    "subtitle": (False, (196, 210, 228)),
    "label": (True, (172, 192, 218)),
    "ticket": (True, YELLOW),
    "counter": (True, WHITE),
    "body": (False, WHITE),
    "muted": (False, (156, 170, 190)),
    "accent": (True, YELLOW),
    "alert": (True, (255, 120, 96)),
    "ticker": (False, WHITE),
}
FONT_FILES = {
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
    ),
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    ),
}
MIN_FONT_PX = 8
TEXT_CACHE_BYTES = 24 * 1024 * 1024  # rendered texts kept (a big ticket number is ~0.5 MB)
IMAGE_CACHE = 8
ELLIPSIS = "…"


@dataclass(frozen=True)
class DrawnText:
    """Where a text landed: its ink box and the part box it had to fit in (for checks)."""

    region: str
    part: str
    text: str
    ink: Box
    box: Box
    font_px: int


def _font_file(bold: bool) -> str | None:
    return next((path for path in FONT_FILES[bold] if os.path.exists(path)), None)


class Renderer:
    """Draws scenes on the screen (or SDL's dummy driver), redrawing only what changed."""

    def __init__(
        self,
        make_layout: Callable[[int, int], Layout],
        size: tuple[int, int],
        plan: VideoPlan,
        title: str = "MPP",
    ) -> None:
        self.make_layout = make_layout
        self.size = size
        self.plan = plan
        self.title = title
        self.layout: Layout | None = None
        self.driver: str | None = None
        self.drawn: dict[str, list[DrawnText]] = {}
        self.redraws: dict[str, int] = {}
        self.frames = 0
        self._pg: Any = None
        self._screen: Any = None
        self._shown: dict[str, Content] = {}
        self._fonts: dict[tuple[bool, int], Any] = {}
        self._caps: dict[tuple[bool, int], tuple[int, int]] = {}
        self._texts: OrderedDict[tuple, tuple[Any, Any, int, str]] = OrderedDict()
        self._text_bytes = 0
        self._images: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        self._warned: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> Layout:
        """Open the screen with the first video driver that works; returns the layout."""
        import pygame

        self._pg = pygame
        errors = []
        for driver in self.plan.drivers:
            os.environ["SDL_VIDEODRIVER"] = driver
            try:
                pygame.display.init()
                flags = pygame.FULLSCREEN if self.plan.fullscreen else 0
                size = (0, 0) if self.plan.fullscreen else self.size
                self._screen = pygame.display.set_mode(size, flags)
                self.driver = driver
                break
            except pygame.error as exc:
                errors.append(f"{driver}: {exc}")
                pygame.display.quit()
        else:
            raise ScreenError(
                "no video driver could open the screen ("
                + "; ".join(errors)
                + "); check the HDMI cable and that no desktop holds the display, or set "
                "SDL_VIDEODRIVER"
            )
        pygame.display.set_caption(self.title)
        if self.plan.fullscreen:
            pygame.mouse.set_visible(False)
        pygame.font.init()
        width, height = self._screen.get_size()
        self.layout = self.make_layout(width, height)
        log.info(
            "screen open",
            extra={"driver": self.driver, "size": f"{width}x{height}", "kind": self.layout.kind},
        )
        return self.layout

    def close(self) -> None:
        """Close the window (the mixer is the player's to close)."""
        if self._pg is not None:
            self._pg.display.quit()

    def poll(self) -> bool:
        """Handle window events; True when someone asked to quit (window closed, Esc)."""
        pg = self._pg
        quit_asked = False
        for event in pg.event.get():
            if event.type == pg.QUIT or (
                event.type == pg.KEYDOWN and event.key in (pg.K_ESCAPE, pg.K_q)
            ):
                quit_asked = True
            elif event.type in (pg.WINDOWEXPOSED, pg.VIDEOEXPOSE, pg.WINDOWRESTORED):
                self.invalidate()
        return quit_asked

    @property
    def text_cache_bytes(self) -> int:
        """Memory held by rendered texts (bounded by TEXT_CACHE_BYTES)."""
        return self._text_bytes

    def shown(self, region: str) -> Content | None:
        """What region `region` shows on the glass now (None before it was drawn)."""
        return self._shown.get(region)

    def invalidate(self) -> None:
        """Forget what is on the glass: the next render draws everything."""
        self._shown.clear()

    # -- drawing ---------------------------------------------------------------------------
    def render(self, scene: Scene) -> list[str]:
        """Draw the regions whose content changed; returns their names."""
        assert self.layout is not None and self._screen is not None, "open() first"
        pg = self._pg
        full = not self._shown
        if full:
            self._screen.fill(BACKGROUNDS["screen"])
        changed: list[str] = []
        for region in self.layout.regions:
            content = scene.get(region.name, Content("screen"))
            if not full and self._shown.get(region.name) == content:
                continue
            self._draw_region(region, content)
            self._shown[region.name] = content
            self.redraws[region.name] = self.redraws.get(region.name, 0) + 1
            changed.append(region.name)
        if full:
            pg.display.flip()
        elif changed:
            pg.display.update([pg.Rect(*self._box(self.layout[n])) for n in changed])
        self.frames += 1
        return changed

    @staticmethod
    def _box(region: Region) -> tuple[int, int, int, int]:
        box = region.box
        return (box.x, box.y, box.w, box.h)

    def _draw_region(self, region: Region, content: Content) -> None:
        pg = self._pg
        box = pg.Rect(*self._box(region))
        self._screen.fill(BACKGROUNDS["screen"], box)
        color = BACKGROUNDS.get(content.background, BACKGROUNDS["screen"])
        if content.background in ("header", "ticker"):
            self._screen.fill(color, box)
        elif content.background != "screen":
            radius = max(2, min(box.w, box.h) // 12)
            pg.draw.rect(self._screen, color, box, border_radius=radius)
        on_highlight = content.background == "highlight"
        parts = {p.name: p for p in region.parts}
        group_px: dict[str, int] = {}
        for item in content.items:  # a list's rows share the size of its tightest row
            part = parts.get(item.part)
            if item.group is not None and part is not None and item.text:
                bold, color = STYLES.get(item.style, STYLES["body"])
                size = self._fit(item.text, bold, color, part.box, part.font_px)[2]
                group_px[item.group] = min(size, group_px.get(item.group, size))
        drawn: list[DrawnText] = []
        for item in content.items:
            part = parts.get(item.part)
            if part is None:
                log.debug("no part %s in region %s", item.part, region.name)
                continue
            if item.group in group_px:
                part = Part(part.name, part.box, group_px[item.group])  # type: ignore[index]
            if item.image is not None or part.name == "image":
                self._draw_image(region, part, item, drawn)
            elif item.text:
                drawn.append(self._draw_text(region.name, part, item, on_highlight))
        self.drawn[region.name] = drawn

    def _font(self, bold: bool, size: int) -> Any:
        key = (bold, size)
        font = self._fonts.get(key)
        if font is None:
            font = self._pg.font.Font(_font_file(bold), size)
            self._fonts[key] = font
        return font

    def _cap_band(self, bold: bool, size: int) -> tuple[int, int]:
        """(top, height) of a capital letter's ink in this font's line: the baseline anchor."""
        key = (bold, size)
        if key not in self._caps:
            ink = self._font(bold, size).render("H", True, WHITE).get_bounding_rect()
            self._caps[key] = (ink.y, max(1, ink.h))
        return self._caps[key]

    def _fit(self, text: str, bold: bool, color: Color, box: Box, max_px: int) -> tuple:
        """(ink surface, ink rect in the line, size, text) of `text` shrunk (then shortened)
        to fit `box`; cached."""
        key = (text, bold, color, box.w, box.h, max_px)
        hit = self._texts.get(key)
        if hit is not None:
            self._texts.move_to_end(key)
            return hit
        size = max(MIN_FONT_PX, max_px)
        surface = ink = None
        for _ in range(12):
            surface = self._font(bold, size).render(text, True, color)
            ink = surface.get_bounding_rect()
            if (ink.w <= box.w and ink.h <= box.h) or size <= MIN_FONT_PX:
                break
            scale = min(box.w / max(1, ink.w), box.h / max(1, ink.h))
            size = max(MIN_FONT_PX, min(size - 1, int(size * scale)))
        shown = text
        if ink.w > box.w or ink.h > box.h:
            font = self._font(bold, size)
            low, high = 0, len(text)
            while low < high:  # longest prefix that fits with an ellipsis
                mid = (low + high + 1) // 2
                candidate = font.render(text[:mid].rstrip() + ELLIPSIS, True, color)
                bounds = candidate.get_bounding_rect()
                if bounds.w <= box.w and bounds.h <= box.h:
                    low = mid
                else:
                    high = mid - 1
            shown = text[:low].rstrip() + ELLIPSIS if low else ""
            surface = font.render(shown, True, color)
            ink = surface.get_bounding_rect()
        result = (surface.subsurface(ink).copy(), ink, size, shown)  # keep only the ink
        self._texts[key] = result
        self._text_bytes += ink.w * ink.h * 4
        while self._text_bytes > TEXT_CACHE_BYTES and len(self._texts) > 1:
            _key, (_s, old, _z, _t) = self._texts.popitem(last=False)
            self._text_bytes -= old.w * old.h * 4
        return result

    def _draw_text(self, region: str, part: Part, item: Item, on_highlight: bool) -> DrawnText:
        bold, color = STYLES.get(item.style, STYLES["body"])
        if on_highlight:
            color = INK_ON_HIGHLIGHT
        box = part.box
        surface, ink, size, shown = self._fit(item.text, bold, color, box, part.font_px)
        if item.align == "center":
            x = box.x + (box.w - ink.w) // 2
        elif item.align == "right":
            x = box.right - ink.w
        else:
            x = box.x
        cap_top, cap_h = self._cap_band(bold, size)
        # Capitals centred in the box (one baseline for every text of a font size) ...
        y = box.y + box.h // 2 - (cap_top + cap_h // 2) + ink.y
        # ... unless descenders or accents would leave the box.
        y = max(box.y, min(y, box.bottom - ink.h))
        if ink.w and ink.h:
            self._screen.blit(surface, (x, y))
        return DrawnText(region, part.name, shown, Box(x, y, ink.w, ink.h), box, size)

    def _image(self, path: str, box: Box) -> Any:
        key = (path, box.w, box.h)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        pg = self._pg
        try:
            picture = pg.image.load(path)
        except (pg.error, FileNotFoundError, OSError) as exc:
            if path not in self._warned:
                self._warned.add(path)
                log.warning(
                    "featured image missing or unreadable; showing its caption instead",
                    extra={"image": path, "error": str(exc)},
                )
            return None
        picture = picture.convert_alpha() if picture.get_alpha() else picture.convert()
        scale = min(box.w / picture.get_width(), box.h / picture.get_height())
        size = (max(1, int(picture.get_width() * scale)), max(1, int(picture.get_height() * scale)))
        picture = pg.transform.smoothscale(picture, size)
        self._images[key] = picture
        if len(self._images) > IMAGE_CACHE:
            self._images.popitem(last=False)
        return picture

    def _draw_image(self, region: Region, part: Part, item: Item, drawn: list[DrawnText]) -> None:
        box = part.box
        picture = self._image(item.image, box) if item.image else None
        if picture is not None:
            x = box.x + (box.w - picture.get_width()) // 2
            y = box.y + (box.h - picture.get_height()) // 2
            self._screen.blit(picture, (x, y))
            return
        pg = self._pg
        radius = max(2, min(box.w, box.h) // 20)
        pg.draw.rect(self._screen, BACKGROUNDS["missing"], pg.Rect(box.x, box.y, box.w, box.h),
                     border_radius=radius)  # fmt: skip
        if item.text:
            caption_box = Box(box.x, box.y, box.w, box.h).inset(box.w // 12, box.h * 2 // 5)
            caption = Part(part.name, caption_box, max(MIN_FONT_PX, int(caption_box.h * 0.8)))
            drawn.append(
                self._draw_text(
                    region.name, caption, Item(part.name, item.text, "title", "center"), False
                )
            )

    def save_png(self, path: Path) -> Path:
        """Save what is on the screen now as a PNG."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pg.image.save(self._screen, str(path))
        return path

    def pixel(self, x: int, y: int) -> Color:
        """The colour at (x, y) on the screen now."""
        return tuple(self._screen.get_at((x, y)))[:3]  # type: ignore[return-value]


class MixerPlayer:
    """Plays WAV files one after another through pygame.mixer; never two at once."""

    def __init__(self, frequency: int = 22050, channels: int = 2, buffer: int = 512) -> None:
        self.frequency = frequency
        self.channels = channels
        self.buffer = buffer
        self._pg: Any = None
        self._channel: Any = None
        self._sounds: OrderedDict[tuple[str, float], Any] = OrderedDict()

    def open(self) -> None:
        """Open the audio device (SDL_AUDIODRIVER picks it; 'dummy' in tests)."""
        import pygame

        self._pg = pygame
        try:
            pygame.mixer.init(self.frequency, -16, self.channels, self.buffer)
        except pygame.error as exc:
            raise AudioError(
                f"cannot open the speakers ({exc}); check the HDMI/ALSA audio output, or set "
                "SDL_AUDIODRIVER"
            ) from exc
        pygame.mixer.set_reserved(1)
        self._channel = pygame.mixer.Channel(0)

    def _sound(self, path: Path) -> Any:
        key = (str(path), path.stat().st_mtime)
        sound = self._sounds.get(key)
        if sound is None:
            sound = self._pg.mixer.Sound(str(path))
            self._sounds[key] = sound
            if len(self._sounds) > 64:
                self._sounds.popitem(last=False)
        else:
            self._sounds.move_to_end(key)
        return sound

    def play(self, wavs: Sequence[Path], volume: float, on_start: Callable[[float], None]) -> None:
        """Play `wavs` in order at `volume`, returning when the last one has ended."""
        if self._channel is None:
            raise AudioError("the mixer is not open")
        try:
            sounds = [self._sound(Path(p)) for p in wavs]
        except (self._pg.error, OSError) as exc:
            raise AudioError(f"cannot load a sound: {exc}") from exc
        for i, sound in enumerate(sounds):
            self._channel.set_volume(volume)
            self._channel.play(sound)
            if i == 0:
                on_start(time.monotonic())
            length = sound.get_length()
            deadline = time.monotonic() + length + 1.0
            time.sleep(max(0.0, length - 0.05))
            while self._channel.get_busy() and time.monotonic() < deadline:
                time.sleep(0.005)

    def channel_volume(self) -> float:
        """The volume the announcement channel plays at (0..1)."""
        return float(self._channel.get_volume()) if self._channel is not None else 0.0

    def close(self) -> None:
        """Release the audio device."""
        if self._pg is not None and self._pg.mixer.get_init():
            self._pg.mixer.quit()
