"""A message-passing graph network (the ogbg family): edge and node updates with sum aggregation, residual
connections and LayerNorm, mean pooling over each molecule, and a linear head to one logit per task."""

import torch
from torch import nn

from workloads.nn import mlp


def gaussian_basis(distances: torch.Tensor, centers: torch.Tensor, width: float) -> torch.Tensor:
    """(E,) distances to (E, K) Gaussian features exp(-((d - c_k) / width)^2)."""
    return torch.exp(-(((distances[:, None] - centers[None]) / width) ** 2))


class InteractionLayer(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.edge_mlp = mlp((3 * width, width, width), last_activation=False)
        self.node_mlp = mlp((2 * width, width, width), last_activation=False)
        self.edge_norm = nn.LayerNorm(width)
        self.node_norm = nn.LayerNorm(width)

    def forward(self, nodes, edges, senders, receivers):
        edges = self.edge_norm(edges + self.edge_mlp(torch.cat([edges, nodes[senders], nodes[receivers]], dim=1)))
        incoming = torch.zeros_like(nodes).index_add_(0, receivers, edges)
        nodes = self.node_norm(nodes + self.node_mlp(torch.cat([nodes, incoming], dim=1)))
        return nodes, edges


class GraphNetwork(nn.Module):
    def __init__(
        self, num_elements: int = 5, num_tasks: int = 12, width: int = 64, depth: int = 3, num_basis: int = 16
    ):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.8, 1.8, num_basis), persistent=False)
        self.basis_width = 1.0 / num_basis * 2
        self.node_embedding = nn.Embedding(num_elements, width)
        self.edge_embedding = nn.Linear(num_basis, width)
        self.layers = nn.ModuleList(InteractionLayer(width) for _ in range(depth))
        self.head = mlp((width, width, num_tasks), last_activation=False)

    def forward(self, graphs: dict, dropout_rate: float = 0.0) -> torch.Tensor:
        """``graphs``: 'atoms' (N,), 'senders'/'receivers' (E,) batch-wide atom indices, 'distances' (E,),
        'graph_of_atom' (N,) and 'atoms_per_graph' (B,); returns (B, num_tasks) logits."""
        nodes = self.node_embedding(graphs["atoms"])
        edges = self.edge_embedding(gaussian_basis(graphs["distances"], self.centers, self.basis_width))
        for layer in self.layers:
            nodes, edges = layer(nodes, edges, graphs["senders"], graphs["receivers"])
            if dropout_rate:
                nodes = nn.functional.dropout(nodes, dropout_rate, self.training)
        counts = graphs["atoms_per_graph"]
        pooled = torch.zeros(len(counts), nodes.shape[1], dtype=nodes.dtype, device=nodes.device)
        pooled.index_add_(0, graphs["graph_of_atom"], nodes)
        return self.head(pooled / counts[:, None].to(nodes.dtype))
