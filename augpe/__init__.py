"""augpe: differentially private synthetic text by Aug-PE (Private Evolution), no training.

    import augpe
    result = augpe.run(augpe.load_config("config.yaml"))

or `augpe run config.yaml`. Privacy code lives in `augpe.privacy`; the loop in `augpe.pe.loop`.
"""

from importlib.metadata import PackageNotFoundError, version

from augpe.config import Config, load_config, parse_config

try:
    __version__ = version("augpe")  # the one version: pyproject.toml's, as installed
except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["Config", "__version__", "load_config", "parse_config", "run"]


def run(config: Config, **kwargs):  # type: ignore[no-untyped-def]
    """Run Aug-PE for `config`; see `augpe.runner.compose.run` (imported lazily: it loads torch)."""
    from augpe.runner.compose import run as _run

    return _run(config, **kwargs)
