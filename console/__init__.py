"""dcconsole: a terminal console for operating a privately deployed AI datacenter."""

__version__ = "0.1.0"
