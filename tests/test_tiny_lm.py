"""The tiny LM, its attention methods, checkpoints and the evaluation functions."""
import math

import pytest
import torch
import torch.nn.functional as F

from selfextend.tiny import corpus, evaluate
from selfextend.tiny.model import (
    PLAIN,
    AttentionMethod,
    TinyLM,
    TinyLMConfig,
    load_checkpoint,
    ntk_base,
    ntk_frequencies,
    pi_frequencies,
    save_checkpoint,
    selfextend,
    yarn_frequencies,
    yarn_logit_scale,
)

CONFIG = TinyLMConfig(n_layers=2, d_model=32, n_heads=2, train_length=16)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyLM(CONFIG).eval()


def test_parameter_count_of_the_default_model():
    # 4 layers x (qkv 3d^2 + out d^2 + mlp 8d^2 + 4d + d + 2 x 2d norms) + embedding 256 d + final norm 2d
    d = 128
    per_layer = 12 * d * d + 4 * d + d + 4 * d
    assert TinyLM().num_parameters() == 4 * per_layer + 256 * d + 2 * d


def test_plain_equals_selfextend_with_group_one(model):
    tokens = torch.randint(0, 256, (2, 48))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, selfextend(1, 4)), model(tokens, PLAIN), atol=1e-5, rtol=1e-5)


def test_plain_equals_selfextend_when_sequence_fits_the_window(model):
    tokens = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, selfextend(8, 12)), model(tokens, PLAIN), atol=1e-5, rtol=1e-5)


def test_selfextend_differs_beyond_the_window(model):
    tokens = torch.randint(0, 256, (1, 40))
    with torch.no_grad():
        for block in model.blocks:  # sharpen the attention of the random model so positions matter
            block.attn.qkv.weight.mul_(20.0)
        grouped, plain = model(tokens, selfextend(4, 8)), model(tokens, PLAIN)
    torch.testing.assert_close(grouped[:, :8], plain[:, :8], atol=1e-5, rtol=1e-5)  # positions < w: identical
    assert (grouped[:, 9:] - plain[:, 9:]).abs().max() > 1e-3


def naive_attention_logits_at(model: TinyLM, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Layer-0 logits with positions rotated by hand, pair by pair, as complex numbers."""
    block = model.blocks[0]
    h = block.norm1(model.embed(x))
    c = model.config
    q, k, _ = block.attn.qkv(h).view(1, -1, 3, c.n_heads, c.head_dim).permute(2, 0, 3, 1, 4)
    n, half = x.shape[1], c.head_dim // 2
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    turn = torch.polar(torch.ones(n, half, dtype=torch.float64), pos * theta[None, :])

    def rot(t):
        z = torch.complex(t[..., :half].double(), t[..., half:].double()) * turn
        return torch.cat((z.real, z.imag), -1)

    return torch.einsum("bhqd,bhkd->bhqk", rot(q), rot(k)) / math.sqrt(c.head_dim)


@pytest.mark.parametrize("kind", ["pi", "ntk"])
def test_scaled_rope_attention_matches_hand_rotation(model, kind):
    tokens = torch.randint(0, 256, (1, 20))
    s = 4.0
    theta = {"pi": pi_frequencies, "ntk": ntk_frequencies}[kind](CONFIG.head_dim, CONFIG.rope_base, s)
    logits = naive_attention_logits_at(model, tokens, theta)
    weights = torch.softmax(logits.masked_fill(~torch.ones(20, 20, dtype=torch.bool).tril(), -math.inf), -1)
    # compare the attention output of layer 0 through the module
    block = model.blocks[0]
    h = block.norm1(model.embed(tokens))
    c = model.config
    _, _, v = block.attn.qkv(h).view(1, -1, 3, c.n_heads, c.head_dim).permute(2, 0, 3, 1, 4)
    expected = block.attn.out((weights.float() @ v).transpose(1, 2).reshape(1, 20, c.d_model))
    got, _ = block.attn(h, AttentionMethod(kind, scale=s))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_pi_frequencies_hand_checked():
    # head_dim 4, base 100: theta = [1, 100**-0.5 = 0.1]; PI with s = 4 divides them by 4
    torch.testing.assert_close(pi_frequencies(4, 100.0, 4.0), torch.tensor([0.25, 0.025], dtype=torch.float64))


def test_ntk_base_and_frequencies_hand_checked():
    # d = 4: base' = 100 * 4 ** (4 / 2) = 1600; theta = [1, 1600 ** -0.5 = 0.025]
    assert ntk_base(4, 100.0, 4.0) == pytest.approx(1600.0)
    torch.testing.assert_close(ntk_frequencies(4, 100.0, 4.0), torch.tensor([1.0, 0.025], dtype=torch.float64))
    # the highest frequency is untouched and the lowest is divided by exactly s, for any d
    theta, plain = ntk_frequencies(32, 10000.0, 8.0), pi_frequencies(32, 10000.0, 1.0)
    assert theta[0] == plain[0] and theta[-1] == pytest.approx(plain[-1].item() / 8.0)


def test_yarn_frequencies_hand_checked():
    # L = 2 pi: pair k turns theta_k times over L. d=4, base 100: theta = [1, 0.1] -> turns [1, 0.1]
    # with alpha=0.05, beta=1.05: gamma = [0.95, 0.05]
    theta = yarn_frequencies(4, 100.0, 2.0, train_length=2 * math.pi, alpha=0.05, beta=1.05)
    expected = torch.tensor([0.05 * 0.5 + 0.95 * 1.0, 0.95 * 0.05 + 0.05 * 0.1], dtype=torch.float64)
    torch.testing.assert_close(theta, expected)
    assert yarn_logit_scale(math.e) == pytest.approx(1.1**2)


def test_scale_one_is_plain(model):
    tokens = torch.randint(0, 256, (1, 24))
    with torch.no_grad():
        plain = model(tokens, PLAIN)
        for kind in ("pi", "ntk", "yarn"):
            torch.testing.assert_close(model(tokens, AttentionMethod(kind, scale=1.0)), plain, atol=1e-5, rtol=1e-5)
        # dynamic scale is 1 up to L_train
        torch.testing.assert_close(model(tokens[:, :16], AttentionMethod("pi")), plain[:, :16], atol=1e-5, rtol=1e-5)


def test_method_labels_and_reach():
    assert selfextend(16, 32).label == "SelfExtend g=16 w=32"
    assert selfextend(16, 32).reach(128) == (128 - 32) * 16 + 32
    assert AttentionMethod("pi", scale=8).label == "PI x8" and PLAIN.reach(128) is None


@pytest.mark.parametrize(
    "kwargs, name",
    [({"kind": "alibi"}, "kind"), ({"kind": "selfextend", "group_size": 0}, "group_size"),
     ({"kind": "selfextend", "window": 0}, "window"), ({"kind": "pi", "scale": 0.5}, "scale"),
     ({"kind": "plain", "group_size": 4}, "group_size"), ({"kind": "selfextend", "scale": 2.0}, "scale")],
)
def test_bad_methods_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AttentionMethod(**kwargs)


def test_bad_model_inputs_raise(model):
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randn(1, 4))
    with pytest.raises(ValueError, match="tokens"):
        model(torch.tensor([[0, 300]]))
    with pytest.raises(ValueError, match="method"):
        model(torch.zeros(1, 4, dtype=torch.long), "selfextend")
    with pytest.raises(ValueError, match="layer"):
        model.attention_weights(torch.zeros(1, 4, dtype=torch.long), PLAIN, layer=5)
    with pytest.raises(ValueError, match="n_heads"):
        TinyLMConfig(d_model=30, n_heads=4)


def test_attention_weights_are_causal_distributions(model):
    tokens = torch.randint(0, 256, (1, 30))
    with torch.no_grad():
        for method in (PLAIN, selfextend(2, 8)):
            w = model.attention_weights(tokens, method, layer=1)
            assert w.shape == (1, 2, 30, 30)
            torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 30, dtype=w.dtype))
            assert w.triu(1).abs().max() == 0


def test_checkpoint_card_round_trip(model, tmp_path):
    card = {"kind": "base", "seed": 3, "steps": 7}
    weights, card_path = save_checkpoint(model, card, tmp_path / "m.pt")
    loaded, loaded_card = load_checkpoint(weights)
    assert card_path.name == "m.json"
    assert loaded_card["seed"] == 3 and loaded_card["config"] == CONFIG.to_dict()
    assert loaded.head.weight is loaded.embed.weight  # still tied
    tokens = torch.randint(0, 256, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model(tokens))
    with pytest.raises(ValueError, match="path"):
        save_checkpoint(model, card, tmp_path / "m.bin")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_token_losses_match_cross_entropy_by_hand(model):
    windows = torch.randint(0, 256, (3, 11))
    losses = evaluate.token_losses(model, windows, PLAIN, batch_size=2)
    with torch.no_grad():
        logp = torch.log_softmax(model(windows[:, :-1]), -1)
    expected = -logp.gather(-1, windows[:, 1:, None]).squeeze(-1)
    torch.testing.assert_close(losses, expected)


def test_bits_per_byte_of_an_untrained_model_is_near_eight(model):
    # a freshly initialised model predicts nearly uniform bytes: log2(256) = 8 bits
    bits = evaluate.bits_per_byte(model, 32, PLAIN, count=2)
    assert abs(bits - 8.0) < 0.1
    assert evaluate.perplexity_from_bits(bits) == pytest.approx(2**bits)
    curve = evaluate.loss_by_position(model, 32, selfextend(2, 8), count=2)
    assert curve.shape == (32,) and abs(curve.mean().item() - 8.0) < 0.1


def test_smooth_bins():
    centres, means = evaluate.smooth(torch.arange(10.0), 4)
    torch.testing.assert_close(means, torch.tensor([1.5, 5.5]))
    torch.testing.assert_close(centres, torch.tensor([1.5, 5.5]))
    with pytest.raises(ValueError, match="bin_size"):
        evaluate.smooth(torch.arange(3.0), 4)


def test_passkey_accuracy_of_a_model_that_always_answers(model):
    # a model whose head always predicts the right digit is 100 % accurate; uniform logits give 0 %
    class Oracle(torch.nn.Module):
        config = CONFIG

        def forward(self, tokens, method):
            logits = torch.zeros(*tokens.shape, 256)
            text = tokens.tolist()
            for b, row in enumerate(text):
                s = bytes(row).decode()
                key = s.split("The pass key is ")[1][:5]
                for i, ch in enumerate(key):
                    logits[b, len(row) - 5 + i, ord(ch)] = 1.0
            return logits

    acc = evaluate.passkey_accuracy(Oracle(), [100, 150], [0.0, 1.0], PLAIN, trials=3)
    assert acc.shape == (2, 2) and torch.all(acc == 1.0)
    acc = evaluate.passkey_accuracy(model, [100], [0.5], PLAIN, trials=2)
    assert acc.shape == (1, 1) and acc.item() == 0.0
    with pytest.raises(ValueError, match="trials"):
        evaluate.passkey_accuracy(model, [100], [0.5], PLAIN, trials=0)


def test_training_reduces_the_loss():
    from selfextend.tiny.train import finetune_passkey, learning_rate

    assert learning_rate(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert learning_rate(99, 100, 1.0, 10) == pytest.approx(0.1, abs=0.01)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(n_layers=1, d_model=32, n_heads=2, train_length=96))
    tokens = torch.stack([e.tokens for e in corpus.passkey_batch(96, [0.5] * 4, seed=0)])

    def digit_loss():
        with torch.no_grad():
            return F.cross_entropy(model(tokens[:, :-1])[:, -5:].transpose(1, 2), tokens[:, -5:]).item()

    before = digit_loss()
    finetune_passkey(model, steps=15, batch_size=4, lr=3e-3, min_length=90, progress=False)
    assert digit_loss() < before - 0.5


@pytest.mark.parametrize(
    "method, prefix_invariant",
    [(PLAIN, True), (selfextend(4, 8), True), (AttentionMethod("pi", scale=4.0), True),
     (AttentionMethod("ntk"), False)],  # dynamic scale: s = n / L_train changes with the length
)
def test_bits_at_lengths_equals_separate_shorter_runs(model, method, prefix_invariant):
    windows = torch.randint(0, 256, (2, 65))
    with torch.no_grad():
        for block in model.blocks:  # sharpen the random model's attention so positions matter
            block.attn.qkv.weight.mul_(20.0)
    full = evaluate.token_losses(model, windows, method) / math.log(2)
    short = evaluate.token_losses(model, windows[:, :33], method) / math.log(2)
    from_prefix = evaluate.bits_at_lengths(full, [32, 64])
    assert from_prefix[64] == pytest.approx(full.mean().item())
    if prefix_invariant:
        assert from_prefix[32] == pytest.approx(short.mean().item(), abs=1e-5)
    else:
        assert abs(from_prefix[32] - short.mean().item()) > 1e-5
    with pytest.raises(ValueError, match="length"):
        evaluate.bits_at_lengths(full, [100])


def test_break_position():
    curve = torch.tensor([1.0, 1.1, 0.9, 1.2, 2.0, 1.0])
    assert evaluate.break_position(curve, 1.0, 0.5) == 4
    assert evaluate.break_position(curve, 1.0, 0.5, start=5) is None


def test_retrieval_scores_shape_and_range(model):
    tokens = torch.randint(0, 256, (2, 30))
    scores = evaluate.retrieval_scores(model, tokens, PLAIN, slice(5, 10))
    assert scores.shape == (2, 2) and torch.all((scores >= 0) & (scores <= 1 + 1e-6))


def test_smooth_log_bins_cover_the_curve_once():
    curve = torch.arange(100.0)
    centres, means = evaluate.smooth_log(curve, per_octave=2, start=8)
    # edges 0, 8, 11, 16, 23, 32, 45, 64, 91, 100
    torch.testing.assert_close(means[:3], torch.tensor([3.5, 9.0, 13.0]))
    assert centres[-1] == pytest.approx(95.0) and means[-1] == pytest.approx(95.0)
    with pytest.raises(ValueError, match="start"):
        evaluate.smooth_log(torch.arange(5.0), start=8)


def test_retrieval_scores_per_row_slices(model):
    tokens = torch.randint(0, 256, (2, 30))
    with torch.no_grad():
        w = model.attention_weights(tokens, PLAIN, 0)
    scores = evaluate.retrieval_scores(model, tokens, PLAIN, [slice(0, 3), slice(10, 12)])
    expected = (w[0, :, -1, 0:3].sum(-1) + w[1, :, -1, 10:12].sum(-1)) / 2
    torch.testing.assert_close(scores[0], expected)
    with pytest.raises(ValueError, match="keys"):
        evaluate.retrieval_scores(model, tokens, PLAIN, [slice(0, 3)])
