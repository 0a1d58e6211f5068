"""The HeLo model: heterogeneous multi-modal fusion with label correlation for emotion distributions.

Architecture as in the paper and its reference code (kaio-99/HeLo), with its faults fixed:
- the label embedding is a learned parameter (the reference draws a new random one on every call);
- DropKey and dropout act only in training mode, so evaluation is deterministic;
- nothing is tied to CUDA; the model runs on whatever device its tensors are on.

Per window the inputs are EEG differential entropy (channels x bands), GSR features, PPG features and a
behavioural (video) vector; the output is a probability distribution over the emotion labels.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


#: Ways the label correlation enters the label attention. `before_scaling` is the paper's (the bias is
#: added to the logits before the 1/sqrt(d) scaling, so a cosine moves them by at most ~0.09);
#: `after_scaling` adds it after the scaling; `learned_scale` multiplies it by a learned scalar before
#: the scaling; `none` drops it (plain cross-attention).
CORRELATION_BIAS = ("before_scaling", "after_scaling", "learned_scale", "none")


@dataclass
class HeloConfig:
    """Dimensions and hyper-parameters (defaults are the paper's)."""

    n_channels: int = 18
    dim_eeg: int = 5
    dim_gsr: int = 28
    dim_ppg: int = 27
    dim_video: int = 768
    feature_dim: int = 128
    hidden_size: int = 64
    heads: int = 4
    heads_lcd: int = 1
    depth: int = 1
    dropout: float = 0.5
    drop_key: float = 0.5
    emotion_classes: int = 10
    ot_lambda: float = 0.1
    gw_iterations: int = 5
    ot_iterations: int = 20
    #: Ablation switches. Heterogeneity mining: carry the physiological tokens onto the behavioural
    #: ones with the Gromov-Wasserstein plan (False: use them as they are).
    heterogeneity_mining: bool = True
    #: Weight of the label-correlation alignment term in the loss (0: the embeddings are not aligned).
    alignment_weight: float = 1.0
    #: How the learned label correlation biases the label attention: one of CORRELATION_BIAS.
    correlation_bias: str = "before_scaling"

    def __post_init__(self):
        if self.correlation_bias not in CORRELATION_BIAS:
            raise ValueError(f"correlation_bias {self.correlation_bias!r}: one of {', '.join(CORRELATION_BIAS)}")

    def to_dict(self):
        return asdict(self)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention with an optional additive bias and DropKey."""

    def __init__(self, model_dim, heads, drop_key, dropout):
        super().__init__()
        self.heads = heads
        self.dim_per_head = model_dim // heads
        self.query = nn.Linear(model_dim, model_dim, bias=False)
        self.key = nn.Linear(model_dim, model_dim, bias=False)
        self.value = nn.Linear(model_dim, model_dim, bias=False)
        self.drop_key = drop_key
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(model_dim)

    def split(self, x):
        return x.reshape(-1, x.shape[1], self.heads, self.dim_per_head).transpose(1, 2)

    def forward(self, x, y, bias=None, bias_after_scaling=False):
        q, k, v = self.split(self.query(x)), self.split(self.key(y)), self.split(self.value(y))
        logits = torch.matmul(q, k.transpose(-1, -2))
        if bias is not None and not bias_after_scaling:
            logits = logits + bias.unsqueeze(1)
        logits = logits * self.dim_per_head**-0.5
        if bias is not None and bias_after_scaling:
            logits = logits + bias.unsqueeze(1)
        if self.training and self.drop_key > 0:
            logits = logits.masked_fill(torch.rand_like(logits) < self.drop_key, -1e12)
        weights = self.dropout(torch.softmax(logits, dim=-1))
        out = torch.matmul(weights, v).transpose(1, 2).reshape(-1, x.shape[1], x.shape[2])
        return self.norm(x + out)


class EncoderLayer(nn.Module):
    """Self-attention then a GELU feed-forward block, each with residual and layer norm."""

    def __init__(self, config):
        super().__init__()
        self.attention = Attention(config.feature_dim, config.heads, config.drop_key, config.dropout)
        self.ffn = nn.Sequential(
            nn.Linear(config.feature_dim, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.feature_dim),
            nn.Dropout(config.dropout),
        )
        self.norm = nn.LayerNorm(config.feature_dim)

    def forward(self, x):
        x = self.attention(x, x)
        return self.norm(x + self.ffn(x))


def intra_domain_cost(x):
    """Thresholded cosine cost between the tokens of one domain (the reference's `cos_batch_torch`)."""
    x = x / (x.norm(dim=-1, keepdim=True) + 1e-12)
    cost = 1 - torch.matmul(x, x.transpose(1, 2))
    low = cost.amin(dim=(1, 2), keepdim=True)
    high = cost.amax(dim=(1, 2), keepdim=True)
    return F.relu(cost - (low + 0.1 * (high - low)))


def log_sum_exp(x, dim):
    """log(sum(exp(x))) along `dim` with the maximum taken out first, so it neither overflows nor
    underflows (written out rather than `torch.logsumexp`, so the ONNX graph is stable on every runtime)."""
    top = x.amax(dim=dim, keepdim=True)
    return (top + torch.log(torch.exp(x - top).sum(dim=dim, keepdim=True))).squeeze(dim)


def round_to_marginals(plan, row, column):
    """The nearest plan with exactly the marginals `row` [B, n] and `column` [B, m]: scale rows and
    columns down where they exceed their marginal, then add the remaining mass as an outer product
    (Altschuler, Weed and Rigollet, NeurIPS 2017, Algorithm 2)."""
    plan = plan * torch.clamp(row / plan.sum(dim=2), max=1.0).unsqueeze(2)
    plan = plan * torch.clamp(column / plan.sum(dim=1), max=1.0).unsqueeze(1)
    row_error = row - plan.sum(dim=2)
    column_error = column - plan.sum(dim=1)
    mass = row_error.sum(dim=1, keepdim=True).unsqueeze(2).clamp_min(1e-30)
    return plan + row_error.unsqueeze(2) * column_error.unsqueeze(1) / mass


def ipot_uniform(cost, beta, iterations):
    """Proximal-point (IPOT) optimal transport plan with uniform marginals, batched.

    Each step is one Sinkhorn update of the kernel exp(-cost/beta) times the previous plan, computed
    in the log domain, so costs far above beta (exp(-cost/beta) below float32's range) stay finite.
    The plan is then rounded onto the exact marginals, which a few steps alone miss by a few percent.
    """
    batch, n, m = cost.shape
    log_plan = torch.zeros_like(cost)
    log_sigma = torch.full_like(cost[:, 0, :], -math.log(m))
    log_kernel = -cost / beta
    for _ in range(iterations):
        log_q = log_kernel + log_plan
        log_delta = -math.log(n) - log_sum_exp(log_q + log_sigma.unsqueeze(1), dim=2)
        log_sigma = -math.log(m) - log_sum_exp(log_q + log_delta.unsqueeze(2), dim=1)
        log_plan = log_delta.unsqueeze(2) + log_q + log_sigma.unsqueeze(1)
    row = torch.full_like(cost[:, :, 0], 1.0 / n)
    column = torch.full_like(cost[:, 0, :], 1.0 / m)
    return round_to_marginals(torch.exp(log_plan), row, column)


def gromov_wasserstein_plan(x, y, beta, gw_iterations, ot_iterations):
    """Entropic Gromov-Wasserstein plan between token sets x [B, n, d] and y [B, m, d].

    The plan is a constant for the gradient (as in the reference code), so it is computed without one.
    """
    with torch.no_grad():
        cs, ct = intra_domain_cost(x), intra_domain_cost(y)
        n, m = x.shape[1], y.shape[1]
        p = torch.ones_like(x[:, :, :1]) / n
        q = torch.ones_like(y[:, :, :1]) / m
        cst = torch.matmul(cs**2, p) + torch.matmul(q.transpose(1, 2), (ct**2).transpose(1, 2))
        plan = torch.matmul(p, q.transpose(1, 2))
        for _ in range(gw_iterations):
            cost = cst - 2 * torch.matmul(torch.matmul(cs, plan), ct.transpose(1, 2))
            plan = ipot_uniform(cost, beta, ot_iterations)
    return plan.detach()


class HeLo(nn.Module):
    """HeLo: EEG-queried cross-attention, GW heterogeneity mining, label-correlation attention."""

    def __init__(self, config: HeloConfig):
        super().__init__()
        self.config = config
        c, d = config.n_channels, config.feature_dim
        self.eeg_encoder = nn.Linear(config.dim_eeg, d)
        self.gsr_encoder = nn.Linear(config.dim_gsr, d * c)
        self.ppg_encoder = nn.Linear(config.dim_ppg, d * c)
        self.cross_attention = Attention(d, config.heads, config.drop_key, config.dropout)
        self.projection = nn.Linear(d, d)
        self.behavioural_encoder = nn.Linear(config.dim_video, d * c * 2)
        self.transformer = nn.Sequential(*[EncoderLayer(config) for _ in range(config.depth)])
        self.fused_projection = nn.Linear(c * 4, config.emotion_classes)
        self.label_embedding = nn.Parameter(torch.rand(config.emotion_classes, d))
        self.label_attention = Attention(d, config.heads_lcd, config.drop_key, config.dropout)
        if config.correlation_bias == "learned_scale":
            self.correlation_scale = nn.Parameter(torch.ones(()))
        self.classifier = nn.Sequential(
            nn.Linear(config.emotion_classes * d, d),
            nn.ReLU(),
            nn.Linear(d, d),
            nn.ReLU(),
            nn.Linear(d, config.emotion_classes),
        )

    def learned_correlation(self):
        """Cosine similarity between the label embeddings, [labels, labels]."""
        e = F.normalize(self.label_embedding, dim=1)
        return torch.matmul(e, e.t())

    def forward(self, eeg, gsr, ppg, video):
        """eeg [B, channels*bands], gsr [B, 28], ppg [B, 27], video [B, dim_video] -> probabilities [B, labels]."""
        cfg = self.config
        eeg = self.eeg_encoder(eeg.reshape(-1, cfg.n_channels, cfg.dim_eeg))
        gsr = self.gsr_encoder(gsr).reshape(-1, cfg.n_channels, cfg.feature_dim)
        ppg = self.ppg_encoder(ppg).reshape(-1, cfg.n_channels, cfg.feature_dim)
        physiological = self.projection(
            torch.cat([self.cross_attention(eeg, gsr), self.cross_attention(eeg, ppg)], dim=1)
        )
        behavioural = self.behavioural_encoder(video).reshape(-1, cfg.n_channels * 2, cfg.feature_dim)
        if cfg.heterogeneity_mining:
            plan = gromov_wasserstein_plan(
                physiological, behavioural, cfg.ot_lambda, cfg.gw_iterations, cfg.ot_iterations
            )
            physiological = torch.matmul(plan.transpose(1, 2) * plan.shape[2], physiological)
        fused = torch.cat([self.transformer(physiological), self.transformer(behavioural)], dim=1)
        fused = self.fused_projection(fused.transpose(1, 2)).transpose(1, 2)
        batch_ones = torch.ones_like(fused[:, :1, :1])
        labels = self.label_embedding.unsqueeze(0) * batch_ones
        correlation = self.learned_correlation().unsqueeze(0) * batch_ones
        if cfg.correlation_bias == "none":
            correlation = None
        elif cfg.correlation_bias == "learned_scale":
            correlation = correlation * self.correlation_scale
        out = self.label_attention(labels, fused, correlation, cfg.correlation_bias == "after_scaling")
        return torch.softmax(self.classifier(out.flatten(1)), dim=1)


def label_correlation(distributions):
    """Label correlation of the ground truth: cosine similarity between label columns, [L, L].

    Like the learned correlation it has a unit diagonal, so the two can actually be aligned (the
    reference compares embeddings normalised over labels with per-sample outer products, whose scales
    differ by an order of magnitude).
    """
    columns = F.normalize(distributions, dim=0)
    return torch.matmul(columns.t(), columns)


def helo_loss(model, predicted, target, correlation_weight=None):
    """KL divergence to the target distribution plus the label-correlation alignment term (MSE),
    weighted by `correlation_weight` (default: the model's `alignment_weight`)."""
    if correlation_weight is None:
        correlation_weight = model.config.alignment_weight
    kl = F.kl_div(torch.log(predicted.clamp_min(1e-12)), target, reduction="batchmean")
    mse = F.mse_loss(model.learned_correlation(), label_correlation(target))
    return kl + correlation_weight * mse, kl, mse
