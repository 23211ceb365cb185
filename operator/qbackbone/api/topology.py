"""The topology of a network problem: links inline, or a GraphML / node-link document."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from qbackbone.api.common import ApiModel


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the job's namespace."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class Link(ApiModel):
    """An undirected link of the topology."""

    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    capacity: float | None = Field(
        default=None, gt=0,
        description="Capacity in the demands' unit (default: defaultCapacity).",
    )


class Topology(ApiModel):
    """The network: links given inline, or a GraphML / node-link JSON document."""

    links: list[Link] | None = Field(default=None, description="Links, inline.")
    format: Literal["graphml", "nodeLink"] | None = Field(
        default=None, description="Format of `document` or of the ConfigMap key."
    )
    document: str | None = Field(default=None, description="A GraphML or node-link JSON text.")
    config_map_ref: ConfigMapKeyRef | None = Field(
        default=None, description="Read the document from this ConfigMap key."
    )
    capacity_attribute: str = Field(
        default="capacity",
        description="Edge attribute holding the capacity in a document (GraphML: e.g. "
        "LinkSpeedRaw, in bit/s; see capacityScale).",
    )
    capacity_scale: float = Field(
        default=1.0, gt=0,
        description="Multiplies document capacities (1e-6 turns bit/s into Mbit/s).",
    )
    default_capacity: float = Field(
        default=10_000.0, gt=0, description="Capacity of links that carry none.",
    )
    node_attribute: str | None = Field(
        default=None, description="Node attribute to use as the node name (GraphML: label)."
    )

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "[has(self.links), has(self.document), has(self.configMapRef)]"
                 ".filter(x, x).size() == 1",
         "message": "give exactly one of links, document or configMapRef"}]})

    @model_validator(mode="after")
    def _one_source(self) -> Topology:
        given = [n for n, v in (("links", self.links), ("document", self.document),
                                ("configMapRef", self.config_map_ref)) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of topology.links, topology.document or "
                             f"topology.configMapRef (got {', '.join(given) or 'none'})")
        if self.links is None and self.format is None:
            raise ValueError("topology.format (graphml or nodeLink) is required with a document "
                             "or configMapRef")
        return self
