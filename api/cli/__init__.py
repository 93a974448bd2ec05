"""The ``carbon-ledger`` command line, one face over the ledger's services.

- :mod:`api.cli.main`: ``main(argv) -> int`` and the registry of command modules.
- :mod:`api.cli.base`: the typer apps, consoles, shared options and output helpers.
- :mod:`api.cli.commands`: submit, balance, proof, redeem, seal, serve, node, batch,
  admin, chain and db commands; :mod:`api.cli.reports` the reports;
  :mod:`api.cli.verify` ``verify`` and the trust store (:mod:`api.cli.trust_store`);
  :mod:`api.cli.demo` the demo; :mod:`api.cli.listing` the admin lists of what exists;
  :mod:`api.cli.partner` what a partner runs (keygen, signed submit; the library is
  :mod:`api.partner`).
- :mod:`api.cli.files` atomic output files and record files read; :mod:`api.cli.charts`
  report charts.

The HTTP face is :mod:`api.http`; both are built by :mod:`api.composition`.
"""
