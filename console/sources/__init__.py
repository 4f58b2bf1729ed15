"""Where a plugin's readings come from: ``direct`` (SSH, BMCs, APIs) or ``prometheus``.

A plugin lets the inventory choose per subsystem (``source:`` in its section,
``console.sources.config``); with Prometheus it reads the standard exporters'
series through one fleet-scoped collector (``console.plugin.fleet_collector``)
that maps them to the same Store keys as its direct collectors
(``console.sources.fleet``). ``console.sources.exposition`` reads and writes the
exporters' text format (the lab serves it; tests read the real samples).
"""
