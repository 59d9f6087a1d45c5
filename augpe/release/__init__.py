"""Releasing a run: the allow-list and the private-record scan (`verify`), the dataset formats
(`export`) and the dataset card (`card`). Reads a finished run folder; never writes one."""

from augpe.release.verify import (
    ARTEFACTS,
    RELEASE_FILES,
    ReleaseError,
    artefact_table,
    find_class_counts,
    public_config,
    release,
    scan_for_private,
)

__all__ = [
    "ARTEFACTS",
    "RELEASE_FILES",
    "ReleaseError",
    "artefact_table",
    "find_class_counts",
    "public_config",
    "release",
    "scan_for_private",
]
