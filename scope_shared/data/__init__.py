"""Routing data: the `RoutingTable`, loaders for the bundled real data and for users' own logs."""

from scope_shared.data.generic import load_routing_table
from scope_shared.data.llmrouter import load_llmrouter9
from scope_shared.data.paths import data_dir, dataset_path
from scope_shared.data.realsets import load_alpacaeval_lengths, load_routerarena2, load_routerbench11
from scope_shared.data.table import RoutingTable, stratified_split

__all__ = [
    "RoutingTable",
    "data_dir",
    "dataset_path",
    "load_alpacaeval_lengths",
    "load_llmrouter9",
    "load_routerarena2",
    "load_routerbench11",
    "load_routing_table",
    "stratified_split",
]
