"""The inventory: the site's rooms, racks, nodes and clusters, checked and resolved."""

from console.inventory.load import apply_plugin_configs, inventory_from_data, load_inventory
from console.inventory.model import Inventory, Node
from console.inventory.problems import InventoryError, Problem

__all__ = [
    "Inventory",
    "InventoryError",
    "Node",
    "Problem",
    "apply_plugin_configs",
    "inventory_from_data",
    "load_inventory",
]
