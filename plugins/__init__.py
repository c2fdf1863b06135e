"""Destination types shipped with offramp: `tiktok-ads-offline-events` and `dummy`.

Each subpackage exposes its descriptor as ``DESTINATION_TYPE``; they are registered through the
``offramp.destinations`` entry point group, never imported by name from here.
"""

__all__: list[str] = []
