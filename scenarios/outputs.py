"""Writing results: all files of a run appear together or not at all."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from scenarios.errors import InputError

KPI_UNITS: dict[str, str] = {
    "peak_kw_before": "kW",
    "peak_kw_after_expected": "kW",
    "peak_kw_after_p10": "kW",
    "peak_kw_after_p50": "kW",
    "peak_kw_after_p90": "kW",
    "incentive_eur": "EUR",
    "bad_debt_eur": "EUR",
    "satisfaction_mean_before": "1",
    "satisfaction_mean_after": "1",
    "violations_before": "1",
    "violations_after": "1",
    "nonconverged_steps": "1",
    "nonconverged_steps_after": "1",
    "energy_kwh": "kWh",
    "acceptance_rate": "1",
    "objective_eur": "EUR",
    # plan and replay on one basis (the window), event calls
    "peak_kw_after_planned_p10": "kW",
    "peak_kw_after_planned_p90": "kW",
    "peak_cut_planned_kw": "kW",
    "peak_cut_realized_kw": "kW",
    "peak_cut_realized_pct": "%",
    "realized_share_of_planned_pct": "%",
    "event_hit_rate_top_days": "1",
}


#: Hidden file in an output folder listing the files the last gridflex command wrote there.
MANIFEST = ".gridflex-outputs.json"
#: A staging folder whose owner cannot be identified is removed once it is this old [s].
STALE_STAGING_S = 24 * 3600.0


def check_writable(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written.

    Checks, without creating anything, that the folder (when it exists) takes new files, and
    that its parent — where the staging folder goes — does too (or, when missing, the nearest
    existing ancestor, where it will be created).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir}: exists and is not a folder")
    places = [out_dir] if out_dir.is_dir() else []
    places.append(_nearest_existing(out_dir.parent))
    for place in places:
        _probe(place, f"output folder {out_dir}")


def check_writable_file(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """Fail before any work when a file cannot be written at ``path`` (named by ``option``)."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{option}: '{path}' must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise InputError(f"{option}: '{path}' is a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option}: '{path}': cannot write (permission denied)")
    _probe(_nearest_existing(path.parent), f"{option}: '{path}'")


def _nearest_existing(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _probe(folder: Path, what: str) -> None:
    """Create and drop a temporary file in ``folder``: the only test that every kind of
    unwritable (permissions, read-only mount, not a folder) fails the way the run would."""
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(f"{what}: cannot write ({error.strerror or error})") from None


def _staging_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.tmp-"


def _staging_owner_tag() -> str:
    # Host and process: a later run on this host removes the folder once that process is gone.
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-"


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove staging folders of ``out_dir`` left by runs that were killed while writing.

    A staging folder is stale when the process named in it (this host) no longer runs, or —
    for one whose owner cannot be read (another host, an older gridflex) — when it is older
    than `STALE_STAGING_S`. Returns the folders removed.
    """
    out_dir = Path(out_dir)
    prefix = _staging_prefix(out_dir)
    host = _staging_owner_tag().rsplit("-", 2)[0]
    pattern = re.compile(r"(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+")
    removed = []
    try:
        candidates = [p for p in out_dir.parent.iterdir()
                      if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for folder in candidates:
        owner = pattern.fullmatch(folder.name[len(prefix):])
        if owner is not None and owner["host"] == host:
            stale = not _process_alive(int(owner["pid"]))
        else:
            try:
                stale = time.time() - folder.stat().st_mtime > STALE_STAGING_S
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def staged_output(out_dir: Path, *, owns_folder: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success move its files into `out_dir`.

    Files are moved one by one with `os.replace` (atomic per file on one file system); on any
    error the temporary folder is removed and `out_dir` is left as it was. A command that owns
    its output folder (``owns_folder``, the default: ``run``, ``simulate``, ``forecast``, …)
    leaves there the files of this command only: files an earlier gridflex command wrote there
    (listed in `MANIFEST`) that this one did not write are removed; files gridflex did not write
    are never touched. A command that writes named files into a folder it does not own
    (``-o scorecard.json``) only adds or replaces its own files. Staging folders of runs killed
    while writing are removed first.
    """
    out_dir = Path(out_dir)
    remove_stale_staging(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir) + _staging_owner_tag(),
                                        dir=out_dir.parent))
    except OSError as error:
        raise InputError(f"output folder {out_dir}: cannot write ({error.strerror or error})") from None
    try:
        yield staging
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            earlier = _read_manifest(out_dir)
            written = sorted(item.name for item in staging.iterdir())
            for name in written:
                os.replace(staging / name, out_dir / name)
            if owns_folder:
                for name in sorted(earlier - set(written)):
                    _remove(out_dir / name)
                _write_manifest(out_dir, written)
        except OSError as error:
            raise InputError(f"output folder {out_dir}: cannot write ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_manifest(out_dir: Path) -> set[str]:
    try:
        names = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    # Plain names only: a doctored manifest must not reach outside the folder.
    return {n for n in names if isinstance(n, str) and n not in ("", ".", "..", MANIFEST)
            and "/" not in n and "\\" not in n and os.sep not in n}


def _write_manifest(out_dir: Path, names: list[str]) -> None:
    tmp = out_dir / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"files": names}, indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def default_file_mode() -> int:
    """Mode a new file gets from ``open()`` under the process umask (0644 under umask 022).

    Read from ``/proc/self/status`` where available: setting and restoring the umask to read
    it would race with other threads creating files.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def write_result(ds: xr.Dataset, path: Path) -> None:
    """Write a Dataset as netCDF-4 (h5netcdf), compressed; bools stored as int8 flags."""
    encoding = {}
    for name, var in ds.variables.items():
        if var.ndim >= 1 and var.dtype.kind in "fiu" and var.size > 1024:
            encoding[name] = {"compression": "gzip", "compression_opts": 4}
    clean = ds.copy()
    for name, value in list(clean.attrs.items()):
        if isinstance(value, bool):
            clean.attrs[name] = int(value)
        elif isinstance(value, list | tuple):
            # netCDF attributes hold no string arrays portably: one comma-separated string.
            clean.attrs[name] = ", ".join(str(v) for v in value)
    try:
        clean.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    except OSError as error:
        raise InputError(f"{path}: cannot write ({error.strerror or error})") from None
