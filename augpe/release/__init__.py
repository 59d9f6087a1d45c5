"""Releasing a run: the allow-list copy (`verify`), the scans it must pass (`scan`), the staging
folder and the constant file metadata (`staging`), the dataset formats (`export`) and the dataset
card (`card`). Reads a finished run folder; never writes one."""

from augpe.release.verify import (
    ARTEFACTS,
    RELEASE_FILES,
    ReleaseError,
    artefact_table,
    find_class_counts,
    find_machine_paths,
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
    "find_machine_paths",
    "public_config",
    "release",
    "scan_for_private",
]
