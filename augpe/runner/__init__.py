"""The composition root: builds the components, runs the loop, owns the run folder (layout, atomic I/O, store, summary, resume, dry run)."""
