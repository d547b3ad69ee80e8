"""The seeded benchmark world of issue 3, generated with numpy in seconds.

- Registry: 10,000,000 distinct US numbers drawn uniformly from 16 area codes x
  800 exchanges (NXX 200-999), about 780 numbers an exchange, written as the
  FTC flat file (`212,5551234` a line) in ascending order, as the FTC's
  per-area-code downloads are.
- Scrub list: 1,000,000 distinct numbers in random order, 10% registered, 45%
  unregistered numbers of the same exchanges and 45% numbers of 8 other area
  codes; written as E.164 (`+12125551234`) and as national text
  (`(212) 555-1234`).
- Late numbers: 10,000 more unregistered numbers of the same exchanges, for
  the check that a running API sees a `dnc load` as soon as it returns.

`--scale` shrinks every count (not the exchanges) for quick runs. Every area
code below is valid in `phonenumbers` for every NXX 200-999 and every line
(the US metadata decides on the area code and the exchange's first digit);
`check_valid` proves it on a sample of every exchange before a world is used.

    python -m benchmarks.world --scale 0.01
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import phonenumbers

SEED = 20_030_627  # the US National DNC Registry opened for registration on 27 June 2003
AREA_CODES = (202, 206, 212, 213, 303, 305, 312, 314, 404, 415, 512, 602, 617, 702, 713, 718)
OTHER_AREA_CODES = (210, 214, 215, 216, 301, 302, 401, 402)
FIRST_EXCHANGE, EXCHANGES = 200, 800  # NXX 200-999
LINES = 10_000
REGISTRY_SIZE = 10_000_000
SCRUB_SIZE = 1_000_000
REGISTERED_SHARE = 0.10
LATE_SIZE = 10_000
DATA_DIR = Path(__file__).parent / "data"
_FORMAT_VERSION = 1  # bump when the generation changes, so old worlds are regenerated


@dataclass(frozen=True)
class World:
    """The numbers (E.164 digits as int64) and the files written from them."""

    directory: Path
    scale: float
    registry: np.ndarray  # ascending
    scrub: np.ndarray  # in list order
    registered: np.ndarray  # bool, aligned with scrub: the truth a scrub must reproduce
    late: np.ndarray  # ascending, in neither of the above

    @property
    def registry_ftc(self) -> Path:
        return self.directory / "registry.ftc.txt"

    @property
    def scrub_e164(self) -> Path:
        return self.directory / "scrub.e164.txt"

    @property
    def scrub_national(self) -> Path:
        return self.directory / "scrub.national.txt"

    @property
    def late_ftc(self) -> Path:
        return self.directory / "late.ftc.txt"

    @property
    def space(self) -> int:
        """How many numbers the registry's exchanges hold: the density's denominator."""
        return len(AREA_CODES) * EXCHANGES * LINES


def sizes(scale: float) -> tuple[int, int, int]:
    """Registry, scrub list and late-load sizes at `scale`."""

    def scaled(n: int) -> int:
        return max(10, round(n * scale))

    return scaled(REGISTRY_SIZE), scaled(SCRUB_SIZE), scaled(LATE_SIZE)


def _numbers(area_codes: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Index i of the space `area codes x 800 exchanges x 10,000 lines` as E.164 digits."""
    per_code = EXCHANGES * LINES
    code = area_codes[index // per_code]
    local = index % per_code + FIRST_EXCHANGE * LINES
    return 10_000_000_000 + code * 10_000_000 + local


def _draw(
    rng: np.random.Generator, area_codes: tuple[int, ...], size: int, exclude: np.ndarray
) -> np.ndarray:
    """`size` distinct numbers of these area codes, uniformly, none in sorted `exclude`."""
    codes = np.array(area_codes, dtype=np.int64)
    space = len(codes) * EXCHANGES * LINES
    found = np.zeros(0, dtype=np.int64)
    while len(found) < size:
        want = size - len(found)
        fresh = _numbers(codes, rng.integers(0, space, int(want * 1.1) + 100))
        found = _without(_distinct(np.concatenate([found, fresh])), exclude)
    return np.sort(rng.choice(found, size, replace=False))


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (numpy 2's np.unique hashes, and takes 15 s on 10M)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def _without(values: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """`values` not in sorted `exclude` (numpy's setdiff1d is as slow)."""
    if len(exclude) == 0:
        return values
    position = np.minimum(np.searchsorted(exclude, values), len(exclude) - 1)
    return values[exclude[position] != values]


def generate(
    scale: float, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_registry, n_scrub, n_late = sizes(scale)
    registry = _draw(rng, AREA_CODES, n_registry, np.zeros(0, dtype=np.int64))
    n_registered = round(n_scrub * REGISTERED_SHARE)
    n_same = (n_scrub - n_registered) // 2
    n_other = n_scrub - n_registered - n_same
    hits = np.sort(rng.choice(registry, n_registered, replace=False))
    same = _draw(rng, AREA_CODES, n_same, registry)
    other = _draw(rng, OTHER_AREA_CODES, n_other, np.zeros(0, dtype=np.int64))
    late = _draw(rng, AREA_CODES, n_late, _distinct(np.concatenate([registry, same])))
    scrub = np.concatenate([hits, same, other])
    registered = np.zeros(n_scrub, dtype=bool)
    registered[:n_registered] = True
    order = rng.permutation(n_scrub)
    return registry, scrub[order], registered[order], late


def check_valid(rng: np.random.Generator | None = None, lines_each: int = 2) -> None:
    """Every exchange of every area code, a few random lines each, is valid and E.164-exact."""
    rng = rng or np.random.default_rng(SEED)
    for code in AREA_CODES + OTHER_AREA_CODES:
        for exchange in range(FIRST_EXCHANGE, FIRST_EXCHANGE + EXCHANGES):
            for line in rng.integers(0, LINES, lines_each).tolist():
                text = f"+1{code}{exchange}{line:04d}"
                parsed = phonenumbers.parse(text, None)
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if not phonenumbers.is_valid_number(parsed) or e164 != text:
                    raise ValueError(f"{text} is not a valid US number; pick other area codes")


# Fixed-width text, built as a byte matrix: one row a line, one column a character.


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for column in range(width - 1, -1, -1):
        out[:, column] = rest % 10 + ord("0")
        rest = rest // 10
    return out


def _text(n: int, *parts: np.ndarray | str) -> bytes:
    """Concatenate digit columns and literal characters, row by row."""
    columns = [
        np.full((n, len(p)), list(p.encode()), dtype=np.uint8) if isinstance(p, str) else p
        for p in parts
    ]
    return np.hstack(columns).tobytes()


def ftc_text(numbers: np.ndarray) -> bytes:
    """`212,5551234` lines."""
    local = numbers % 10_000_000
    area = numbers // 10_000_000 % 1000
    return _text(len(numbers), _digits(area, 3), ",", _digits(local, 7), "\n")


def e164_text(numbers: np.ndarray) -> bytes:
    """`+12125551234` lines (NANP numbers: always 11 digits)."""
    return _text(len(numbers), "+", _digits(numbers, 11), "\n")


def national_text(numbers: np.ndarray) -> bytes:
    """`(212) 555-1234` lines."""
    area = numbers // 10_000_000 % 1000
    exchange = numbers // 10_000 % 1000
    line = numbers % 10_000
    return _text(
        len(numbers),
        "(",
        _digits(area, 3),
        ") ",
        _digits(exchange, 3),
        "-",
        _digits(line, 4),
        "\n",
    )


def directory_for(scale: float) -> Path:
    return DATA_DIR / f"scale-{scale:g}"


def _meta(scale: float, seed: int) -> dict[str, object]:
    n_registry, n_scrub, n_late = sizes(scale)
    return {
        "version": _FORMAT_VERSION,
        "seed": seed,
        "scale": scale,
        "registry": n_registry,
        "scrub": n_scrub,
        "late": n_late,
        "area_codes": list(AREA_CODES),
        "other_area_codes": list(OTHER_AREA_CODES),
    }


def ensure(scale: float = 1.0, seed: int = SEED, log: bool = True) -> World:
    """The world at `scale`: read back when it was generated before, else generated now."""
    directory = directory_for(scale)
    meta_path = directory / "meta.json"
    arrays_path = directory / "world.npz"
    meta = _meta(scale, seed)
    if meta_path.exists() and arrays_path.exists() and json.loads(meta_path.read_text()) == meta:
        with np.load(arrays_path) as saved:
            world = World(
                directory,
                scale,
                saved["registry"],
                saved["scrub"],
                saved["registered"],
                saved["late"],
            )
        if all(p.exists() for p in _files(world)):
            return world
    started = time.perf_counter()
    check_valid()
    registry, scrub, registered, late = generate(scale, seed)
    directory.mkdir(parents=True, exist_ok=True)
    world = World(directory, scale, registry, scrub, registered, late)
    world.registry_ftc.write_bytes(ftc_text(registry))
    world.scrub_e164.write_bytes(e164_text(scrub))
    world.scrub_national.write_bytes(national_text(scrub))
    world.late_ftc.write_bytes(ftc_text(late))
    np.savez(arrays_path, registry=registry, scrub=scrub, registered=registered, late=late)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    if log:
        print(
            f"world at scale {scale:g}: {len(registry):,} registered, {len(scrub):,} to scrub, "
            f"written to {directory} in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return world


def _files(world: World) -> list[Path]:
    return [world.registry_ftc, world.scrub_e164, world.scrub_national, world.late_ftc]


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the benchmark world.")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    ensure(args.scale, args.seed)


if __name__ == "__main__":
    main()
