"""The stacked model of a pack: K Llama decoders of one shape as one module.

``PackedLlama`` holds each parameter of ``transformers``' ``LlamaForCausalLM`` stacked over the
K members; every linear layer of the K models is one batched matmul (q, k and v fused, and gate
and up), norms and rotary embeddings are broadcast. The maths is Llama's (RMSNorm in fp32,
rotary embeddings, grouped-query attention, SwiGLU), so a member computes its solo model's
losses up to float rounding. ``pack_loss`` is each member's next-token loss. Training a pack is
``proxies.pack``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import LlamaForCausalLM

from mixtures.errors import ConfigError
from proxies.config import ModelShape
from proxies.model import build_model
from proxies.train import LOSS_CHUNK_ELEMENTS, PLAIN_LOSS_MAX_ELEMENTS


def _key(name: str) -> str:
    """A parameter name of ``LlamaForCausalLM`` as a ``ParameterDict`` key (no dots)."""
    return name.replace(".", "__")


class PackedLlama(nn.Module):
    """K Llama decoders of ``shape`` with stacked parameters: ``params[name]`` is (K, *shape of
    the solo model's parameter ``name``).

    Built from K solo models (``build_model`` with each member's initialisation seed), so member
    k starts from exactly the weights of its solo run.
    """

    def __init__(self, models: Sequence[LlamaForCausalLM]) -> None:
        super().__init__()
        if not models:
            raise ConfigError("a pack needs at least one model")
        first = models[0]
        self.config = first.config
        self.names = [name for name, _ in first.named_parameters()]
        self.params = nn.ParameterDict(
            {
                _key(name): nn.Parameter(
                    torch.stack([m.get_parameter(name).detach() for m in models]).clone()
                )
                for name in self.names
            }
        )
        # The rotary embedding has no parameters: the first model's module is shared.
        self.rotary = first.model.rotary_emb
        cfg = self.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads or cfg.num_attention_heads)
        self.head_dim = int(cfg.hidden_size) // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.tied = bool(cfg.tie_word_embeddings)
        if cfg.hidden_act != "silu" or cfg.attention_bias or cfg.mlp_bias:
            raise ConfigError("a pack supports the Llama decoder of proxies.model only")

    @property
    def size(self) -> int:
        """Members in the pack (K)."""
        return int(self.params[_key(self.names[0])].size(0))

    def p(self, name: str) -> torch.Tensor:
        return self.params[_key(name)]

    def _norm(self, h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """RMSNorm of (K, N, C) with (K, C) weights, computed in fp32 as transformers does."""
        dtype = h.dtype
        h32 = h.to(torch.float32)
        h32 = h32 * torch.rsqrt(h32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight[:, None, :] * h32.to(dtype)

    @staticmethod
    def _linear(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(K, N, in) x (K, out, in) -> (K, N, out): K linear layers as one batched matmul."""
        return torch.bmm(h, weight.transpose(1, 2))

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Final hidden states (K, B, T, C) of token ids (K, B, T), member k reading ids[k]."""
        K, B, T = ids.shape
        emb = self.p("model.embed_tokens.weight")  # (K, V, C)
        # One lookup in the (K * V, C) table of every member's rows: member k's ids are offset
        # by k * V (an embedding's backward is a cheap scatter, advanced indexing's is not).
        offsets = torch.arange(K, device=ids.device)[:, None, None] * emb.size(1)
        h = F.embedding(ids + offsets, emb.reshape(-1, emb.size(-1))).view(K, B * T, -1)
        positions = torch.arange(T, device=ids.device)[None, :]
        cos, sin = self.rotary(h, positions)  # (1, T, hd) each
        cos, sin = cos[:, None], sin[:, None]  # (1, 1, T, hd): broadcast over (K*B, H, T, hd)
        for i in range(self.n_layers):
            pre = f"model.layers.{i}."
            x = self._norm(h, self.p(pre + "input_layernorm.weight"))
            # q, k and v of every member in one batched matmul (their weights side by side)
            qkv = self._linear(
                x,
                torch.cat(
                    [self.p(pre + f"self_attn.{n}_proj.weight") for n in ("q", "k", "v")], dim=1
                ),
            ).view(K * B, T, self.n_heads + 2 * self.kv_heads, self.head_dim)
            qkv = qkv.transpose(1, 2)  # (KB, H + 2 KV, T, hd)
            q = qkv[:, : self.n_heads]
            k = qkv[:, self.n_heads : self.n_heads + self.kv_heads]
            v = qkv[:, self.n_heads + self.kv_heads :]
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            if self.kv_heads != self.n_heads:
                groups = self.n_heads // self.kv_heads
                k = k.repeat_interleave(groups, dim=1)
                v = v.repeat_interleave(groups, dim=1)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (KB, H, T, hd)
            att = att.transpose(1, 2).reshape(K, B * T, self.n_heads * self.head_dim)
            h = h + self._linear(att, self.p(pre + "self_attn.o_proj.weight"))
            x = self._norm(h, self.p(pre + "post_attention_layernorm.weight"))
            gate, up = self._linear(
                x,
                torch.cat(
                    [self.p(pre + "mlp.gate_proj.weight"), self.p(pre + "mlp.up_proj.weight")],
                    dim=1,
                ),
            ).chunk(2, dim=-1)
            h = h + self._linear(F.silu(gate) * up, self.p(pre + "mlp.down_proj.weight"))
        h = self._norm(h, self.p("model.norm.weight"))
        return h.view(K, B, T, -1)

    def head(self) -> torch.Tensor:
        """The output layers' weights (K, V, C): the token embeddings when tied."""
        return self.p("model.embed_tokens.weight" if self.tied else "lm_head.weight")

    def member(self, k: int, *, seq_len: int) -> LlamaForCausalLM:
        """Member ``k`` as a plain ``LlamaForCausalLM`` (a copy, on this pack's device)."""
        cfg = self.config
        shape = ModelShape(
            d_model=cfg.hidden_size,
            n_layers=cfg.num_hidden_layers,
            n_heads=cfg.num_attention_heads,
            d_ff=cfg.intermediate_size,
            n_kv_heads=cfg.num_key_value_heads,
            tie_embeddings=self.tied,
        )
        model = build_model(shape, vocab_size=cfg.vocab_size, seq_len=seq_len, seed=0)
        with torch.no_grad():
            for name in self.names:
                model.get_parameter(name).copy_(self.p(name)[k])
        module: nn.Module = model
        module.to(self.p(self.names[0]).device)
        return model

    def with_params(self, params: Mapping[str, torch.Tensor]) -> PackedLlama:
        """A pack of this one's shape whose stacked parameters are ``params`` (by parameter
        name, any number of members), frozen: e.g. merged models (``proxies.merge``)."""
        new = copy.copy(self)
        new._modules = dict(self._modules)
        new.params = nn.ParameterDict(
            {_key(n): nn.Parameter(params[n], requires_grad=False) for n in self.names}
        )
        return new

    def keep(self, members: Sequence[int], opt: torch.optim.Optimizer) -> None:
        """Keep only ``members`` (indices into the pack), in that order, in the parameters and
        in ``opt``'s state: the dropped members' slices are freed, the others are untouched."""
        index = torch.tensor(list(members), dtype=torch.long)
        for group in opt.param_groups:
            new_params = []
            for old in group["params"]:
                key = next(k for k, v in self.params.items() if v is old)
                new = nn.Parameter(old.detach()[index.to(old.device)].clone())
                state = opt.state.pop(old, None)
                if state is not None:
                    opt.state[new] = {
                        s: (v[index.to(v.device)].clone() if v.ndim > 0 else v)
                        for s, v in state.items()
                    }
                self.params[key] = new
                new_params.append(new)
            group["params"] = new_params


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def pack_loss(
    pack: PackedLlama,
    batch: torch.Tensor,
    *,
    autocast: bool,
    plain_max_elements: int = PLAIN_LOSS_MAX_ELEMENTS,
    chunk_elements: int = LOSS_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Each member's mean next-token cross-entropy (K,) of ``batch`` (K, B, T+1).

    As ``proxies.train.next_token_loss``: the logits are materialised at once up to
    ``plain_max_elements`` (all members together), else the output layer and the fp32 loss run
    on chunks of tokens, recomputed in the backward pass.
    """
    x, y = batch[..., :-1], batch[..., 1:]  # (K, B, T) each
    K = x.size(0)
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast):
        hidden = pack.hidden(x)  # (K, B, T, C)
    head = pack.head()  # (K, V, C)
    vocab = head.size(1)
    hidden = hidden.reshape(K, -1, hidden.size(-1))  # (K, N, C)
    targets = y.reshape(K, -1)  # (K, N)
    n = targets.size(1)
    if targets.numel() * vocab <= plain_max_elements:
        return _chunk_losses(head, hidden, targets, autocast) / n
    chunk = max(1, chunk_elements // (vocab * K))
    total = torch.zeros(K, dtype=torch.float32, device=batch.device)
    for start in range(0, n, chunk):
        h, t = hidden[:, start : start + chunk], targets[:, start : start + chunk]
        if torch.is_grad_enabled():
            part = checkpoint(
                _chunk_losses, head, h, t, autocast, use_reentrant=False, preserve_rng_state=False
            )
        else:
            part = _chunk_losses(head, h, t, autocast)
        total = total + part
    return total / n


def _chunk_losses(
    head: torch.Tensor,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    autocast: bool,
) -> torch.Tensor:
    """Summed cross-entropy per member (K,) of (K, n, C) hidden states and (K, n) targets."""
    with torch.autocast(hidden.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = torch.bmm(hidden, head.transpose(1, 2))  # (K, n, V)
    K, n, V = logits.shape
    losses = F.cross_entropy(logits.float().reshape(-1, V), targets.reshape(-1), reduction="none")
    return losses.view(K, n).sum(1)
