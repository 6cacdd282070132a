"""pytest plugin: collects ``scenarios/*.yaml`` drill files as tests (filled in by the drill engine)."""
