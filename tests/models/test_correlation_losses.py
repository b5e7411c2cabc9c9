"""Correlation distillation losses: fast paths vs explicit N x N references, edge cases, API."""
import pytest
import torch
import torch.nn.functional as F

from hicd_mm.models.losses import (ChannelWiseDivergenceLoss, CrossCorrelationLoss,
                                   FeatureMSELoss, GlobalCorrelationLoss, SelfCorrelationLoss)
from hicd_mm.models.losses import correlation as corr
from hicd_mm.models.losses import correlation_reference as ref_impl
from hicd_mm.models.losses.correlation import flatten_features
from hicd_mm.registry import MODELS

# (B, C_s, C_t, H, W)
SHAPES = [(2, 8, 16, 5, 7), (3, 32, 4, 9, 9), (1, 6, 6, 1, 11), (4, 64, 48, 12, 10)]


def self_mse(x_s, x_t, gram_dtype=torch.float64):
    return corr.correlation_mse(x_s, x_s, x_t, x_t, gram_dtype)


def self_mse_explicit(x_s, x_t):
    return ref_impl.correlation_mse_explicit(x_s, x_s, x_t, x_t)


MSE_PAIRS = {
    'self': (self_mse, self_mse_explicit),
    'batch': (corr.batch_correlation_mse, ref_impl.batch_correlation_mse_explicit),
    'cross_image': (corr.cross_image_correlation_mse,
                    ref_impl.cross_image_correlation_mse_explicit),
    'cross': (corr.correlation_mse, ref_impl.correlation_mse_explicit),
}
KL_PAIRS = {
    'self': (lambda a, b, tau, chunk_size: corr.correlation_kl(a, a, b, b, tau, chunk_size),
             lambda a, b, tau: ref_impl.correlation_kl_explicit(a, a, b, b, tau)),
    'cross_image': (lambda a, b, tau, chunk_size: corr.cross_image_correlation_kl(
        a, b, tau, chunk_size), ref_impl.cross_image_correlation_kl_explicit),
    'cross': (lambda a, b, c, d, tau, chunk_size: corr.correlation_kl(a, b, c, d, tau,
                                                                      chunk_size),
              lambda a, b, c, d, tau: ref_impl.correlation_kl_explicit(a, b, c, d, tau)),
}


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """The tensors here are tiny: one thread is faster, above all on a busy machine."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def make_inputs(shape, seed=0, dtype=torch.float32, dates=1):
    """Random (B, C, H, W) student maps (requiring grad) and teacher maps, one per date."""
    g = torch.Generator().manual_seed(seed)
    b, cs, ct, h, w = shape
    xs = [torch.randn(b, cs, h, w, generator=g, dtype=dtype).requires_grad_()
          for _ in range(dates)]
    xt = [torch.randn(b, ct, h, w, generator=g, dtype=dtype) for _ in range(dates)]
    return xs, xt


def loss_and_grad(fn, xs, xt):
    """Flatten and normalise the maps, apply ``fn`` and differentiate w.r.t. the student."""
    flat_s = [flatten_features(x) for x in xs]
    flat_t = [flatten_features(x) for x in xt]
    if len(xs) == 1:
        loss = fn(flat_s[0], flat_t[0])
    else:
        loss = fn(flat_s[0], flat_s[1], flat_t[0], flat_t[1])
    return loss, torch.autograd.grad(loss, xs)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('term', ['self', 'batch', 'cross_image', 'cross'])
def test_gram_path_matches_explicit(shape, term):
    if term == 'cross_image' and shape[0] == 1:
        pytest.skip('no other image in a batch of one (tested separately)')
    dates = 2 if term == 'cross' else 1
    fast, ref = MSE_PAIRS[term]
    # float32 inputs against the float64 explicit reference (the float32 explicit sum itself
    # carries ~1e-6 relative error at these sizes).
    xs, xt = make_inputs(shape, seed=sum(shape), dates=dates)
    xs64 = [x.detach().double().requires_grad_() for x in xs]
    xt64 = [x.double() for x in xt]
    loss, grads = loss_and_grad(fast, xs, xt)
    loss_ref, grads_ref = loss_and_grad(ref, xs64, xt64)
    assert loss.dtype == torch.float32
    assert loss.item() > 0
    assert rel(loss.double(), loss_ref) < 1e-5
    for g, g_ref in zip(grads, grads_ref):
        assert rel(g.double(), g_ref) < 1e-5
    # float32 explicit path agrees too, and float64 throughout agrees to rounding.
    loss_ref32, grads_ref32 = loss_and_grad(ref, xs, xt)
    assert rel(loss, loss_ref32) < 1e-5
    for g, g_ref in zip(grads, grads_ref32):
        assert rel(g, g_ref) < 1e-5
    loss64, _ = loss_and_grad(fast, xs64, xt64)
    assert rel(loss64, loss_ref) < 1e-10


def test_gram_backward_gradcheck():
    """The analytic backward of the Gram path, w.r.t. student and teacher inputs."""
    g = torch.Generator().manual_seed(7)

    def rnd(c, n):
        return torch.randn(2, c, n, generator=g, dtype=torch.float64).requires_grad_()

    rs, ks, rt, kt, kt5 = rnd(3, 5), rnd(3, 4), rnd(4, 5), rnd(4, 4), rnd(4, 5)
    cases = [
        (corr.correlation_mse, (rs, ks, rt, kt)),  # cross
        (lambda a, b: corr.correlation_mse(a, a, b, b), (rs, rt)),  # self
        (lambda a, b, c: corr.correlation_mse(a, a, b, c), (rs, rt, kt5)),  # mixed
        (lambda a, b: corr.batch_correlation_mse(a, b), (rs, rt)),
        (lambda a, b: corr.cross_image_correlation_mse(a, b), (rs, rt)),
        (lambda a, b, c, d: corr.cross_image_correlation_mse(a, b, rows_s=c, rows_t=d),
         (rs, rt, rnd(3, 4), rnd(4, 4))),
    ]
    for fn, inputs in cases:
        assert torch.autograd.gradcheck(fn, inputs)
    # Gradients in the input dtype (float32) when gram_dtype is float64.
    x = torch.randn(2, 3, 6, requires_grad=True)
    (grad,) = torch.autograd.grad(self_mse(x, torch.randn(2, 5, 6)), x)
    assert grad.dtype == torch.float32


@pytest.mark.parametrize('term', ['self', 'cross', 'cross_image'])
def test_gram_path_in_several_position_chunks(monkeypatch, term):
    monkeypatch.setattr(corr, 'GRAM_CHUNK_ELEMENTS', 1)  # 128 positions per chunk
    dates = 2 if term == 'cross' else 1
    fast, ref = MSE_PAIRS[term]
    xs, xt = make_inputs((2, 4, 3, 15, 20), seed=11, dates=dates, dtype=torch.float64)
    loss, grads = loss_and_grad(fast, xs, xt)
    loss_ref, grads_ref = loss_and_grad(ref, xs, xt)
    assert rel(loss, loss_ref) < 1e-10
    for g, g_ref in zip(grads, grads_ref):
        assert rel(g, g_ref) < 1e-10


def test_gram_float64_avoids_cancellation():
    """Student ~ teacher: the three Gram terms nearly cancel; float64 keeps the small value."""
    g = torch.Generator().manual_seed(1)
    t = torch.randn(2, 64, 32, 32, generator=g)
    s = t + 1e-4 * torch.randn(t.shape, generator=g)
    xs, xt = flatten_features(s), flatten_features(t)
    ref = self_mse_explicit(xs.double(), xt.double())
    assert rel(self_mse(xs, xt), ref.float()) < 1e-5
    # Without the float64 Gram products the same value is dominated by rounding error.
    assert rel(self_mse(xs, xt, gram_dtype=None), ref.float()) > 0.1


def test_accumulation_dtype_is_a_floor():
    """gram_dtype raises the accumulation dtype but never lowers the input's."""
    assert corr.accumulation_dtype(torch.float32, torch.float16) == torch.float32
    assert corr.accumulation_dtype(torch.float32, torch.float64) == torch.float64
    assert corr.accumulation_dtype('float64', torch.float32) == torch.float64
    assert corr.accumulation_dtype(None, torch.bfloat16) == torch.bfloat16
    # the teacher's dtype counts too: a float64 teacher is not rounded to float32
    assert corr.accumulation_dtype(torch.float32, torch.float32, torch.float64) == torch.float64
    with pytest.raises(ValueError, match='gram_dtype'):
        corr.accumulation_dtype('int32', torch.float32)


@pytest.mark.parametrize('noise,tol', [(1.0, 1e-5), (0.1, 1e-5), (0.01, 1e-3)])
def test_default_float32_grams_at_training_loss_values(noise, tol):
    """The float32 default matches the float64 value and gradient where training losses are."""
    g = torch.Generator().manual_seed(2)
    t = F.normalize(torch.randn(3, 48, 40, 40, generator=g).relu(), dim=1)
    s = t + noise * torch.randn(t.shape, generator=g)
    xs, xt = flatten_features(s).requires_grad_(), flatten_features(t)
    values, grads = [], []
    for module in (SelfCorrelationLoss(), SelfCorrelationLoss(gram_dtype='float64')):
        loss = module(xs.view(3, 48, 40, 40), xt.view(3, 48, 40, 40))
        values.append(loss.double())
        grads.append(torch.autograd.grad(loss, xs)[0].double())
    assert SelfCorrelationLoss().gram_dtype == torch.float32
    assert rel(values[0], values[1]) < tol
    assert rel(grads[0], grads[1]) < 10 * tol


def test_gram_clamped_at_zero():
    """In float32 the three terms of a near-identical pair can sum to a tiny negative value."""
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(2, 64, 16, 16, generator=g)
        s = t + 1e-6 * torch.randn(t.shape, generator=g)
        xs, xt = flatten_features(s), flatten_features(t)
        for dtype in (None, torch.float64):
            loss = self_mse(xs, xt, gram_dtype=dtype)
            assert 0 <= loss.item() < 1e-7
        # Where a sample's unclamped float32 value is negative, its gradient is 0 (clamp_min).
        g_ss, g_tt, g_st = corr._grams(xs, xt, torch.float32)
        unclamped = (corr._frobenius_inner(g_ss, g_ss) - 2 * corr._frobenius_inner(g_st, g_st)
                     + corr._frobenius_inner(g_tt, g_tt))
        xs_ = xs.clone().requires_grad_()
        (grad,) = torch.autograd.grad(self_mse(xs_, xt, gram_dtype=None), xs_)
        for b in range(2):
            if unclamped[b] < 0:
                assert grad[b].abs().max() == 0
            elif unclamped[b] > 0:
                assert grad[b].abs().max() > 0


# ------------------------------------------------ Gram matrices shared by the terms of a pair
def plain_grams(x_s, x_t):
    """The three per-sample Gram matrices with plain bmm (torch autograd differentiates them)."""
    return (torch.bmm(x_s, x_s.transpose(1, 2)), torch.bmm(x_t, x_t.transpose(1, 2)),
            torch.bmm(x_s, x_t.transpose(1, 2)))


def gram_nodes(loss):
    """The distinct ``_PairGrams`` backward nodes in the autograd graph of ``loss``."""
    seen, stack = {}, [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(next_node for next_node, _ in node.next_functions)
    return [n for n in seen.values() if type(n).__name__ == '_PairGramsBackward']


@pytest.mark.parametrize('shape', [(2, 3, 5, 7), (1, 6, 2, 4), (3, 4, 4, 9)])
def test_pair_grams_backward_matches_autograd(shape):
    """The analytic backward of ``_PairGrams`` against torch autograd of plain bmm Grams, for
    arbitrary (non-symmetric) incoming gradients, unused outputs and a constant teacher."""
    b, c_s, c_t, n = shape
    g = torch.Generator().manual_seed(sum(shape))

    def rnd(*size):
        return torch.randn(*size, generator=g, dtype=torch.float64)

    x_s, x_t = rnd(b, c_s, n).requires_grad_(), rnd(b, c_t, n).requires_grad_()
    upstream = (rnd(b, c_s, c_s), rnd(b, c_t, c_t), rnd(b, c_s, c_t))
    out, ref = corr.pair_grams(x_s, x_t, torch.float64), plain_grams(x_s, x_t)
    for o, r in zip(out, ref):
        assert o.dtype == torch.float64 and rel(o, r) < 1e-12
    grads = torch.autograd.grad(out, (x_s, x_t), upstream)
    grads_ref = torch.autograd.grad(ref, (x_s, x_t), upstream)
    for gr, gr_ref in zip(grads, grads_ref):
        assert gr_ref.abs().max() > 0 and rel(gr, gr_ref) < 1e-10
    # Only some outputs used: the others contribute nothing.
    for used in ([0], [1], [2], [0, 2]):
        out, ref = corr.pair_grams(x_s, x_t, torch.float64), plain_grams(x_s, x_t)
        grads = torch.autograd.grad([out[i] for i in used], (x_s, x_t),
                                    [upstream[i] for i in used], allow_unused=True)
        grads_ref = torch.autograd.grad([ref[i] for i in used], (x_s, x_t),
                                        [upstream[i] for i in used], allow_unused=True)
        for x, gr, gr_ref in zip((x_s, x_t), grads, grads_ref):
            assert (gr is None) == (gr_ref is None) or gr.abs().max() == 0
            gr = torch.zeros_like(x) if gr is None else gr
            gr_ref = torch.zeros_like(x) if gr_ref is None else gr_ref
            assert (gr - gr_ref).abs().max() <= 1e-10 * gr_ref.abs().max().clamp_min(1)
    # A constant teacher gets no gradient; the student's is unchanged.
    x_t_const = x_t.detach()
    out = corr.pair_grams(x_s, x_t_const, torch.float64)
    (grad,) = torch.autograd.grad(out, x_s, upstream)
    ref = plain_grams(x_s, x_t_const)  # its G_tt is a constant
    (grad_ref,) = torch.autograd.grad((ref[0], ref[2]), x_s, (upstream[0], upstream[2]))
    assert rel(grad, grad_ref) < 1e-10
    assert torch.autograd.gradcheck(lambda a, c: corr.pair_grams(a, c, torch.float64),
                                    (x_s, x_t))


def test_pair_grams_converted_in_chunks(monkeypatch):
    """float32 inputs with float64 accumulation go through chunks of positions in both passes;
    the gradients come back in float32."""
    monkeypatch.setattr(corr, 'GRAM_CHUNK_ELEMENTS', 1)  # 128 positions per chunk
    g = torch.Generator().manual_seed(5)
    x_s = torch.randn(2, 3, 300, generator=g).requires_grad_()
    x_t = torch.randn(2, 4, 300, generator=g).requires_grad_()
    upstream = [torch.randn(2, *s, generator=g, dtype=torch.float64)
                for s in ((3, 3), (4, 4), (3, 4))]
    out = corr.pair_grams(x_s, x_t, torch.float64)
    ref = plain_grams(x_s.double(), x_t.double())
    for o, r in zip(out, ref):
        assert o.dtype == torch.float64 and rel(o, r) < 1e-12
    grads = torch.autograd.grad(out, (x_s, x_t), upstream)
    grads_ref = torch.autograd.grad(ref, (x_s, x_t), upstream)
    for gr, gr_ref in zip(grads, grads_ref):
        assert gr.dtype == torch.float32 and rel(gr, gr_ref) < 1e-6


# (B, C_s, C_t, H, W)
SHARED_SHAPES = [(2, 8, 16, 5, 7), (3, 32, 4, 9, 9), (1, 6, 6, 1, 11), (4, 12, 20, 6, 5)]


@pytest.mark.parametrize('shape', SHARED_SHAPES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_shared_pair_grams_match_separate_terms(shape, dtype):
    """Self and cross-image terms on one prepared pair (shared Grams, one backward pass) give
    the values and gradients of the terms computed separately: through the general Gram path
    (rows and columns as distinct tensors, nothing shared) and through the explicit N x N
    references."""
    (s,), (t,) = make_inputs(shape, seed=sum(shape) + 1, dtype=dtype)
    self_loss = SelfCorrelationLoss(loss_weight=0.7)
    glob_loss = GlobalCorrelationLoss(loss_weight=1.3)
    pair = corr.prepare_pair(s, t, self_loss.preparation)
    shared = dict(self=self_loss.forward_prepared(pair), glob=glob_loss.forward_prepared(pair))
    assert len(gram_nodes(shared['self'] + shared['glob'])) == 1
    grads_shared = {k: torch.autograd.grad(v, s, retain_graph=True)[0]
                    for k, v in shared.items()}
    (grad_total,) = torch.autograd.grad(shared['self'] + shared['glob'], s)

    def general(term, x_s, x_t):
        """The old general Gram function: columns are views, so rows is not cols."""
        if term == 'self':
            return 0.7 * corr.correlation_mse(x_s, x_s.view_as(x_s), x_t, x_t.view_as(x_t))
        return 1.3 * corr.cross_image_correlation_mse(x_s, x_t, rows_s=x_s.view_as(x_s),
                                                      rows_t=x_t.view_as(x_t))

    def explicit(term, x_s, x_t):
        if term == 'self':
            return 0.7 * self_mse_explicit(x_s, x_t)
        return 1.3 * ref_impl.cross_image_correlation_mse_explicit(x_s, x_t)

    s64 = s.detach().double().requires_grad_()
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for term, value in shared.items():
        assert value.dtype == dtype
        if term == 'glob' and shape[0] == 1:
            assert value.item() == 0 and grads_shared[term].abs().max() == 0
            continue
        assert value.item() > 0
        for fn, x_s, x_t in ((general, s, t), (explicit, s64, t.double())):
            ref = fn(term, flatten_features(x_s), flatten_features(x_t))
            (grad_ref,) = torch.autograd.grad(ref, x_s)
            assert rel(value.double(), ref.double()) < tol
            assert rel(grads_shared[term].double(), grad_ref.double()) < tol
    # One backward pass through the shared Grams is the sum of the separate gradients.
    assert rel(grad_total, grads_shared['self'] + grads_shared['glob']) < tol
    # The module values equal the public functions on the same tensors.
    x_s, x_t = pair.student, pair.teacher
    assert torch.equal(shared['self'], 0.7 * corr.correlation_mse(x_s, x_s, x_t, x_t))
    assert torch.equal(shared['glob'], 1.3 * corr.cross_image_correlation_mse(x_s, x_t))


def test_self_and_cross_image_terms_share_one_gram_product():
    """The pair memoises its Grams per dtype (and grad mode); the self and cross-image terms
    on it reach the same Gram node, separately prepared pairs one each; weighted, sampled,
    KL and float64 terms leave the float32 Grams alone."""
    (s,), (t,) = make_inputs((3, 8, 6, 7, 5), seed=9)
    self_loss, glob_loss = SelfCorrelationLoss(), GlobalCorrelationLoss()
    pair = corr.prepare_pair(s, t, self_loss.preparation)
    grams = pair.grams(torch.float32)
    assert pair.grams(torch.float32) is grams
    assert [g.shape for g in grams] == [(3, 8, 8), (3, 6, 6), (3, 8, 6)]
    total = self_loss.forward_prepared(pair) + glob_loss.forward_prepared(pair)
    (node,) = gram_nodes(total)
    assert node is grams[0].grad_fn
    assert len(gram_nodes(self_loss(s, t) + glob_loss(s, t))) == 2
    # Grams computed without gradients are never handed to a term that needs one.
    with torch.no_grad():
        no_grad = pair.grams(torch.float32)
    assert no_grad[0].grad_fn is None and no_grad is not grams
    assert pair.grams(torch.float32) is grams
    # A float64 term gets float64 Grams of its own.
    (node64,) = gram_nodes(SelfCorrelationLoss(gram_dtype='float64').forward_prepared(pair))
    assert node64 is pair.grams(torch.float64)[0].grad_fn and node64 is not node
    # Terms that cannot use the full pair's Grams do not compute them.
    other = corr.prepare_pair(s, t, self_loss.preparation)
    for module in (SelfCorrelationLoss(sample_pixels=10), GlobalCorrelationLoss(sample_pixels=10),
                   SelfCorrelationLoss(distance='kl'), GlobalCorrelationLoss(distance='kl'),
                   GlobalCorrelationLoss(blocks='all')):
        assert torch.isfinite(module.forward_prepared(other))
    assert not other._grams


def test_change_aware_terms_share_weights_and_weighted_grams():
    """The class-balanced ('rows') self and cross-image terms of one pair share the position
    weights, the weighted Grams and the plain Grams they are built on (one Gram node for
    both terms); a new label tensor gets weights of its own."""
    (s,), (t,) = make_inputs((3, 8, 6, 7, 5), seed=12)
    label = torch.zeros(3, 7, 5, dtype=torch.long)
    label[:, 1:3, 2:4] = 1  # a change blob: the weights take two values
    rows_self = SelfCorrelationLoss(class_balance='rows')
    rows_glob = GlobalCorrelationLoss(class_balance='rows')
    pair = corr.prepare_pair(s, t, rows_self.preparation)
    weights = rows_self.position_weights(pair, label)
    assert rows_glob.position_weights(pair, label) is weights
    assert torch.equal(weights, corr.class_balanced_position_weights(label, (7, 5)))
    total = rows_self.forward_prepared(pair, label) + rows_glob.forward_prepared(pair, label)
    (node,) = gram_nodes(total)
    assert node is pair.grams(torch.float32)[0].grad_fn
    assert pair.grams(torch.float32, weights) is pair.grams(torch.float32, weights)
    # The shared values and the summed gradient equal the separately computed terms.
    separate = rows_self(s, t, label) + rows_glob(s, t, label)
    assert rel(total, separate) < 1e-6
    (g_shared,) = torch.autograd.grad(total, s)
    (g_separate,) = torch.autograd.grad(separate, s)
    assert rel(g_shared, g_separate) < 1e-5
    assert pair.position_weights(label.clone()) is not pair.position_weights(label)


def naive_weighted_grams(x_s, x_t, w):
    """``X diag(w) Y^T`` by an explicit loop over the positions."""
    b, n = w.shape
    out = [torch.zeros(b, x.shape[1], y.shape[1], dtype=torch.float64)
           for x, y in ((x_s, x_s), (x_t, x_t), (x_s, x_t))]
    for i in range(b):
        for j in range(n):
            for o, (x, y) in zip(out, ((x_s, x_s), (x_t, x_t), (x_s, x_t))):
                o[i] += w[i, j].double() * torch.outer(x[i, :, j], y[i, :, j])
    return out


def weight_patterns():
    g = torch.Generator().manual_seed(21)
    blob = torch.zeros(3, 1, 6, 5, dtype=torch.long)
    blob[0, :, 1:3, 1:4] = 1
    blob[1, :, 4:, :] = 1
    blob[1, :, 0, 0] = 255  # an ignored cell: a weight below the common one
    blob[2] = 255  # no valid pixel: all weights 0
    single = torch.ones(3, 1, 6, 5, dtype=torch.long)  # one class only: all weights 1
    weights = {name: corr.class_balanced_position_weights(label, (6, 5))
               for name, label in (('blob', blob), ('single', single))}
    # every weight different (e.g. isolated changed pixels pooled to a coarse grid)
    weights['distinct'] = 2 * torch.rand(3, 30, generator=g)
    return weights


@pytest.mark.parametrize('pattern, path', [('blob', 'moved'), ('single', 'moved'),
                                           ('distinct', 'direct')])
def test_weighted_grams_match_the_explicit_sum(pattern, path):
    """X diag(w) X^T from the plain Grams plus the moved positions (or directly where most
    positions move) equals the explicit sum over positions, values and gradient."""
    w = weight_patterns()[pattern].double()
    g = torch.Generator().manual_seed(22)
    x_s = torch.randn(3, 5, 30, generator=g, dtype=torch.float64, requires_grad=True)
    x_t = torch.randn(3, 4, 30, generator=g, dtype=torch.float64)
    plain_calls = []

    def plain():
        plain_calls.append(1)
        return corr.pair_grams(x_s, x_t, torch.float64)

    grams = corr.weighted_pair_grams(x_s, x_t, w, torch.float64, plain=plain)
    assert len(plain_calls) == (1 if path == 'moved' else 0)
    expected = naive_weighted_grams(x_s.detach(), x_t, w)
    probe = [torch.randn(e.shape, generator=g, dtype=torch.float64) for e in expected]
    for got, ref in zip(grams, expected):
        assert rel(got.detach(), ref) < 1e-12
    # gradient of a random linear function of the Grams against the dense sqrt(w) path
    (grad,) = torch.autograd.grad(sum((p * q).sum() for p, q in zip(grams, probe)), x_s)
    root = w.sqrt()[:, None]
    dense = corr.pair_grams(x_s * root, x_t * root, torch.float64)
    (grad_ref,) = torch.autograd.grad(sum((p * q).sum() for p, q in zip(dense, probe)), x_s)
    assert rel(grad, grad_ref) < 1e-12
    with pytest.raises(ValueError, match=r'weights must be \(B, N\)'):
        corr.weighted_pair_grams(x_s, x_t, w[:, :-1], torch.float64)


def test_cross_term_reuses_the_dates_grams():
    """The cross term (t1 rows, t2 columns) takes the Grams of the two dates' pairs, which the
    self and cross-image terms of each date also use: the semantic terms of a stage build two
    Gram nodes in all; value and gradient equal the explicit N x N reference."""
    xs, xt = make_inputs((3, 6, 9, 5, 4), seed=13, dates=2)
    cross, self_loss, glob = CrossCorrelationLoss(), SelfCorrelationLoss(), \
        GlobalCorrelationLoss()
    p1, p2 = (corr.prepare_pair(s, t, cross.preparation) for s, t in zip(xs, xt))
    value = cross.forward_prepared(p1, p2)
    total = value + sum(m.forward_prepared(p) for m in (self_loss, glob) for p in (p1, p2))
    assert len(gram_nodes(total)) == 2
    assert len(gram_nodes(value)) == 2
    xs64 = [x.detach().double().requires_grad_() for x in xs]
    flat_s = [flatten_features(x) for x in xs64]
    flat_t = [flatten_features(x.double()) for x in xt]
    ref = ref_impl.correlation_mse_explicit(flat_s[0], flat_s[1], flat_t[0], flat_t[1])
    assert rel(value.double(), ref) < 1e-5
    grads = torch.autograd.grad(value, xs)
    grads_ref = torch.autograd.grad(ref, xs64)
    for g, g_ref in zip(grads, grads_ref):
        assert rel(g.double(), g_ref) < 1e-5
    # Sampled positions take the general path (no Grams of the pairs).
    q1, q2 = (corr.prepare_pair(s, t, cross.preparation) for s, t in zip(xs, xt))
    assert torch.isfinite(CrossCorrelationLoss(sample_pixels=7).forward_prepared(q1, q2))
    assert not q1._grams and not q2._grams


def test_shared_grams_clamp_like_the_general_path():
    """Near-identical float32 pairs, where rounding makes the distances slightly negative: the
    shared-Gram values equal the general path's bit for bit, clamping included (per sample for
    the self term, on the total for the cross-image term), and the same samples get a zero
    gradient."""
    def general_self(x_s, x_t):
        return corr.correlation_mse(x_s, x_s.view_as(x_s), x_t, x_t.view_as(x_t), None)

    def general_cross_image(x_s, x_t):
        return corr.cross_image_correlation_mse(x_s, x_t, None, x_s.view_as(x_s),
                                                x_t.view_as(x_t))

    clamped = 0
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(3, 64, 8, 8, generator=g)
        s = (t + 1e-6 * torch.randn(t.shape, generator=g)).requires_grad_()
        pair = corr.prepare_pair(s, t, corr.FeaturePreparation())
        for module, general in ((SelfCorrelationLoss(gram_dtype=None), general_self),
                                (GlobalCorrelationLoss(gram_dtype=None), general_cross_image)):
            value = module.forward_prepared(pair)
            (grad,) = torch.autograd.grad(value, s, retain_graph=True)
            ref = general(flatten_features(s), flatten_features(t))
            (grad_ref,) = torch.autograd.grad(ref, s)
            assert torch.equal(value, ref)
            assert torch.equal(grad.flatten(1).abs().amax(1) == 0,
                               grad_ref.flatten(1).abs().amax(1) == 0)
            clamped += int((grad.flatten(1).abs().amax(1) == 0).sum())
    assert clamped > 0  # the case occurs


def test_batch_and_cross_image_against_concatenated_positions():
    """K is the affinity of all positions of all images: the per-image A on its diagonal;
    the cross-image term is K without its diagonal blocks."""
    xs, xt = make_inputs((3, 4, 5, 3, 2), seed=4)
    a, b = flatten_features(xs[0]), flatten_features(xt[0])
    cat_s, cat_t = torch.cat(list(a), dim=1), torch.cat(list(b), dim=1)  # (C, B N)
    k_s, k_t = cat_s.T @ cat_s, cat_t.T @ cat_t
    expected = ((k_s - k_t)**2).sum() / (3 * 6)**2
    assert rel(ref_impl.batch_correlation_mse_explicit(a, b), expected) < 1e-6
    assert rel(corr.batch_correlation_mse(a, b), expected) < 1e-5
    assert torch.allclose(k_s[6:12, 6:12], a[1].T @ a[1], atol=1e-6)
    off = torch.ones(18, 18, dtype=torch.bool)
    for i in range(3):
        off[6 * i:6 * i + 6, 6 * i:6 * i + 6] = False
    expected_off = ((k_s - k_t)**2)[off].sum() / (3 * 2 * 36)
    assert rel(corr.cross_image_correlation_mse(a, b), expected_off) < 1e-5
    # KL: every row is a softmax over the other images' columns only.
    rows = []
    for r in range(18):
        log_p_s = torch.log_softmax(k_s[r][off[r]], 0)
        log_p_t = torch.log_softmax(k_t[r][off[r]], 0)
        rows.append((log_p_t.exp() * (log_p_t - log_p_s)).sum())
    kl = torch.stack(rows).mean()
    assert rel(corr.cross_image_correlation_kl(a, b, chunk_size=4), kl) < 1e-5


@pytest.mark.parametrize('chunk_size', [3, 7, 1024])
@pytest.mark.parametrize('term', ['self', 'cross_image', 'cross'])
def test_kl_chunked_matches_explicit(chunk_size, term):
    dates = 2 if term == 'cross' else 1
    fast, ref = KL_PAIRS[term]
    xs, xt = make_inputs((2, 8, 12, 6, 5), seed=chunk_size, dates=dates)
    for tau in (1.0, 0.3):
        def chunked(*x):
            return fast(*x, tau=tau, chunk_size=chunk_size)

        def explicit(*x):
            return ref(*x, tau=tau)

        loss, grads = loss_and_grad(chunked, xs, xt)
        loss_ref, grads_ref = loss_and_grad(explicit, xs, xt)
        assert loss.item() > 0
        assert rel(loss, loss_ref) < 1e-5
        for g, g_ref in zip(grads, grads_ref):
            assert rel(g, g_ref) < 1e-4


def test_kl_explicit_matches_naive_loop():
    xs, xt = make_inputs((2, 4, 3, 3, 4), seed=3)
    a, b = flatten_features(xs[0]), flatten_features(xt[0])
    tau, total = 0.5, 0.0
    for i in range(2):
        aff_s, aff_t = a[i].T @ a[i] / tau, b[i].T @ b[i] / tau
        for r in range(aff_s.shape[0]):
            p_t = torch.softmax(aff_t[r], 0)
            total += (p_t * (p_t.log() - torch.log_softmax(aff_s[r], 0))).sum()
    expected = total / (2 * 12) * tau**2
    assert rel(ref_impl.correlation_kl_explicit(a, a, b, b, tau), expected) < 1e-6


def build_losses(**kwargs):
    return [SelfCorrelationLoss(**kwargs), CrossCorrelationLoss(**kwargs),
            GlobalCorrelationLoss(**kwargs)]


def call(loss, s, t, s2=None, t2=None):
    if isinstance(loss, CrossCorrelationLoss):
        return loss(s, s if s2 is None else s2, t, t if t2 is None else t2)
    return loss(s, t)


@pytest.mark.parametrize('distance', ['mse', 'kl'])
@pytest.mark.parametrize('which', ['student', 'teacher', 'both'])
def test_zero_features_finite(distance, which):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 8, 6, 6, generator=g)
    t = torch.randn(2, 16, 6, 6, generator=g)
    if which in ('student', 'both'):
        s = torch.zeros_like(s)
    if which in ('teacher', 'both'):
        t = torch.zeros_like(t)
    for loss_fn in build_losses(distance=distance, chunk_size=5):
        s_ = s.clone().requires_grad_()
        loss = call(loss_fn, s_, t)
        (grad,) = torch.autograd.grad(loss, s_)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        if which == 'both':
            assert loss.item() == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize('distance', ['mse', 'kl'])
def test_identical_zero_and_different_positive(distance):
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 32, 16, 16, generator=g)
    f2 = torch.randn(2, 32, 16, 16, generator=g)
    for loss_fn in build_losses(distance=distance):
        same = call(loss_fn, f, f.clone(), f2, f2.clone())
        assert 0 <= same.item() <= 1e-7
        diff = call(loss_fn, f, torch.randn(2, 16, 16, 16, generator=g), f2,
                    torch.randn(2, 16, 16, 16, generator=g))
        assert diff.item() > 1e-4


@pytest.mark.parametrize('distance', ['mse', 'kl'])
def test_global_all_blocks_with_batch_of_one_equals_self(distance):
    xs, xt = make_inputs((1, 8, 12, 7, 6), seed=5)
    glob = GlobalCorrelationLoss(distance=distance, blocks='all')(xs[0], xt[0])
    self_ = SelfCorrelationLoss(distance=distance)(xs[0], xt[0])
    assert rel(glob, self_) < 1e-6
    # ... but not for a larger batch, where inter-image relations enter.
    xs, xt = make_inputs((2, 8, 12, 7, 6), seed=5)
    assert rel(GlobalCorrelationLoss(distance=distance, blocks='all')(xs[0], xt[0]),
               SelfCorrelationLoss(distance=distance)(xs[0], xt[0])) > 1e-3


@pytest.mark.parametrize('distance', ['mse', 'kl'])
def test_cross_image_global_is_not_the_self_term(distance):
    """Batch of one: no other image, so loss 0 and a zero gradient. A student that matches
    the teacher within every image but not across images has a zero self term and a
    positive cross-image term."""
    xs, xt = make_inputs((1, 8, 12, 7, 6), seed=5)
    s = xs[0]
    loss = GlobalCorrelationLoss(distance=distance)(s, xt[0])
    (grad,) = torch.autograd.grad(loss, s)
    assert loss.item() == 0 and grad.abs().max() == 0
    # Two images whose student features equal the teacher's within each image but with the
    # second image's channels rotated: self affinities agree exactly (self term 0), the
    # relations between the images do not (cross-image term > 0).
    g = torch.Generator().manual_seed(3)
    t = torch.randn(2, 6, 5, 5, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    s = t.clone()
    s[1] = torch.einsum('ij,jhw->ihw', q.float(), t[1])
    assert SelfCorrelationLoss(distance=distance)(s, t).item() < 1e-6
    assert GlobalCorrelationLoss(distance=distance)(s, t).item() > 1e-3


def test_spatial_mismatch():
    s, t = torch.randn(2, 8, 8, 8), torch.randn(2, 4, 16, 12)
    for loss_fn in build_losses():
        loss = call(loss_fn, s.requires_grad_(), t)
        resized = F.interpolate(s, size=(16, 12), mode='bilinear', align_corners=False)
        assert rel(loss, call(loss_fn, resized, t)) < 1e-6
    for loss_fn in build_losses(resize_mode='error'):
        with pytest.raises(ValueError) as err:
            call(loss_fn, s, t)
        assert '(2, 8, 8, 8)' in str(err.value) and '(2, 4, 16, 12)' in str(err.value)


def test_teacher_gets_no_gradient_but_student_does():
    for distance in ('mse', 'kl'):
        for loss_fn in build_losses(distance=distance):
            s = torch.randn(2, 8, 6, 6, requires_grad=True)
            t = torch.randn(2, 4, 6, 6, requires_grad=True)
            call(loss_fn, s, t).backward()
            assert t.grad is None
            assert s.grad is not None and s.grad.abs().sum() > 0


def test_pooling_reduces_positions():
    f = torch.randn(2, 8, 40, 20)
    assert flatten_features(f, pool_size=16).shape == (2, 8, 16 * 16)
    assert flatten_features(f, pool_size=30).shape == (2, 8, 30 * 20)
    assert flatten_features(f, pool_size=64).shape == (2, 8, 800)
    pooled = F.adaptive_avg_pool2d(f, (16, 16))
    t = torch.randn(2, 4, 40, 20)
    loss = SelfCorrelationLoss(pool_size=16)(f, t)
    ref = SelfCorrelationLoss()(pooled, F.adaptive_avg_pool2d(t, (16, 16)))
    assert rel(loss, ref) < 1e-6


def test_normalisation_and_zero_vectors():
    f = torch.randn(2, 5, 3, 4)
    f[0, :, 1, 2] = 0
    x = flatten_features(f)
    norms = x.norm(dim=1)
    assert norms[0, 1 * 4 + 2] == 0
    norms[0, 1 * 4 + 2] = 1
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)
    assert torch.equal(flatten_features(f, normalize=False), f.flatten(2))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_l2_normalize_matches_the_autograd_expression(dtype):
    """The fused backward equals autograd's of x * rsqrt(max(|x|^2, eps^2)), also for zero
    vectors and vectors whose norm is below eps (clamped); gradcheck in float64."""
    g = torch.Generator().manual_seed(31)
    x0 = torch.randn(3, 7, 11, generator=g, dtype=dtype)
    x0[0, :, 2] = 0
    x0[1, :, 5] *= 1e-8  # below eps: clamped
    x0[2, :, 0] = 1e-3  # above eps
    grad_y = torch.randn(x0.shape, generator=g, dtype=dtype)
    eps = 1e-6
    results = []
    for fn in (lambda x: corr.l2_normalize_positions(x, eps),
               lambda x: x * x.square().sum(1, keepdim=True).clamp_min(eps * eps).rsqrt()):
        x = x0.clone().requires_grad_()
        y = fn(x)
        (grad,) = torch.autograd.grad(y, x, grad_y)
        results.append((y.detach(), grad))
    (y, grad), (y_ref, grad_ref) = results
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert rel(y, y_ref) < tol and rel(grad, grad_ref) < tol
    assert grad[0, :, 2].abs().max() > 0 and torch.isfinite(grad).all()
    with torch.no_grad():
        assert torch.equal(corr.l2_normalize_positions(x0, eps), y)
    if dtype == torch.float64:
        x = torch.randn(2, 4, 5, generator=g, dtype=dtype, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: corr.l2_normalize_positions(t, eps), (x, ))
    with pytest.raises(ValueError, match=r'\(B, C, N\)'):
        corr.l2_normalize_positions(torch.randn(2, 3))


def test_sample_pixels_and_loss_weight():
    s, t = torch.randn(2, 8, 16, 16), torch.randn(2, 4, 16, 16)
    for cls in (SelfCorrelationLoss, CrossCorrelationLoss, GlobalCorrelationLoss):
        for distance in ('mse', 'kl'):
            torch.manual_seed(0)
            a = call(cls(distance=distance, sample_pixels=50), s, t)
            torch.manual_seed(0)
            b = call(cls(distance=distance, sample_pixels=50, loss_weight=3.0), s, t)
            assert torch.isfinite(a) and a > 0
            assert rel(b, 3 * a) < 1e-6
            # Sampling everything (or more) is the unsampled loss.
            assert rel(call(cls(distance=distance, sample_pixels=10_000), s, t),
                       call(cls(distance=distance), s, t)) < 1e-6
    # Same indices for student and teacher: identical maps still give 0.
    assert GlobalCorrelationLoss(distance='kl', sample_pixels=40)(s, s.clone()) <= 1e-7
    assert GlobalCorrelationLoss(sample_pixels=40)(s, s.clone()) <= 1e-7


def test_registry_names_and_validation():
    for name, key in (('SelfCorrelationLoss', 'loss_self_corr'),
                      ('CrossCorrelationLoss', 'loss_cross_corr'),
                      ('GlobalCorrelationLoss', 'loss_global_corr')):
        loss = MODELS.build(dict(type=name))
        assert type(loss).__name__ == name and loss.loss_name == key
    assert MODELS.build(dict(type='SelfCorrelationLoss', gram_dtype='float32')).gram_dtype \
        == torch.float32
    assert SelfCorrelationLoss(loss_name='loss_x').loss_name == 'loss_x'
    bad = [dict(distance='l1'), dict(tau=0), dict(tau=-1.0), dict(pool_size=0),
           dict(chunk_size=0), dict(sample_pixels=0), dict(resize_mode='nearest'),
           dict(gram_dtype='int64'), dict(gram_dtype='float99'), dict(loss_name='self'),
           dict(loss_weight=-1.0), dict(class_balance='columns'),
           dict(class_balance='pairs', distance='kl')]
    for kwargs in bad:
        with pytest.raises(ValueError):
            SelfCorrelationLoss(**kwargs)
    with pytest.raises(ValueError, match='batch sizes'):
        SelfCorrelationLoss()(torch.randn(2, 3, 4, 4), torch.randn(3, 3, 4, 4))
    for kwargs in (dict(blocks='diagonal'), dict(loss_weight=-0.5)):
        with pytest.raises(ValueError):
            GlobalCorrelationLoss(**kwargs)
    with pytest.raises(ValueError, match='class_balance'):
        CrossCorrelationLoss(class_balance='rows')
    with pytest.raises(ValueError, match='label'):
        SelfCorrelationLoss(class_balance='rows')(torch.randn(2, 3, 4, 4),
                                                  torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match='same shape'):
        CrossCorrelationLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 5, 4),
                               torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))


def test_feature_mse_adapter():
    loss_fn = MODELS.build(dict(type='FeatureMSELoss', student_channels=8,
                                teacher_channels=16))
    assert loss_fn.loss_name == 'loss_feat_mse'
    assert len(list(loss_fn.parameters())) == 2  # exists at build time for the optimizer
    s = torch.randn(2, 8, 6, 6, requires_grad=True)
    t = torch.randn(2, 16, 12, 12, requires_grad=True)
    loss = loss_fn(s, t)
    loss.backward()
    assert loss_fn.adapter.weight.grad is not None
    assert loss_fn.adapter.weight.grad.abs().sum() > 0
    assert s.grad is not None and t.grad is None
    expected = F.mse_loss(F.interpolate(loss_fn.adapter(s), size=(12, 12), mode='bilinear',
                                        align_corners=False), t)
    assert rel(loss, expected) < 1e-6
    with pytest.raises(ValueError, match='channels'):
        loss_fn(torch.randn(2, 4, 6, 6), t)


def naive_cwd(s, t, tau):
    b, c = s.shape[:2]
    total = 0.0
    for i in range(b):
        for j in range(c):
            p_t = torch.softmax(t[i, j].flatten() / tau, 0)
            log_p_s = torch.log_softmax(s[i, j].flatten() / tau, 0)
            total = total + (p_t * (p_t.log() - log_p_s)).sum()
    return total / (b * c) * tau**2


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_cwd_matches_naive_loop(tau):
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(3, 5, 7, 6, generator=g), torch.randn(3, 5, 7, 6, generator=g)
    loss_fn = ChannelWiseDivergenceLoss(tau=tau, loss_weight=2.0)
    assert loss_fn.adapter is None and loss_fn.loss_name == 'loss_cwd'
    assert rel(loss_fn(s, t), 2 * naive_cwd(s, t, tau)) < 1e-5
    assert loss_fn(s, s.clone()).abs().item() < 1e-6


def test_cwd_adapter_and_errors():
    loss_fn = ChannelWiseDivergenceLoss(student_channels=4, teacher_channels=6)
    s = torch.randn(2, 4, 5, 5, requires_grad=True)
    t = torch.randn(2, 6, 5, 5)
    loss_fn(s, t).backward()
    assert loss_fn.adapter.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='adapter'):
        ChannelWiseDivergenceLoss()(torch.randn(2, 4, 5, 5), t)
    with pytest.raises(ValueError):
        ChannelWiseDivergenceLoss(tau=0)
    with pytest.raises(ValueError):
        FeatureMSELoss(0, 3)


def test_benchmark_worker_runs():
    """The benchmark's in-process worker on a tiny map (the full table takes minutes)."""
    import importlib.util
    import os.path as osp
    path = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'benchmark',
                    'bench_correlation.py')
    spec = importlib.util.spec_from_file_location('bench_correlation', path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    num_threads = torch.get_num_threads()
    try:
        gram = bench.worker('cross', 'gram', '2x4x6x6', 'memory', repeats=1)
        expl = bench.worker('cross', 'explicit', '2x4x6x6', 'time', repeats=1)
    finally:
        torch.set_num_threads(num_threads)
    assert gram['peak_mb'] >= 0 and expl['time_s'] > 0
    assert gram['value'] == pytest.approx(expl['value'], rel=1e-5)


# --------------------------------------------------------------------------- change-aware
def naive_balanced_weights(label):
    """Per-pixel class-balancing weights on the label's own grid, by plain loops."""
    b = label.shape[0]
    flat = label.reshape(b, -1)
    n = flat.shape[1]
    out = torch.zeros(b, n)
    for i in range(b):
        changed = (flat[i] == 1).sum().item()
        unchanged = (flat[i] == 0).sum().item()
        for j in range(n):
            if flat[i, j] == 1:
                out[i, j] = n * (0.5 if unchanged else 1.0) / changed
            elif flat[i, j] == 0:
                out[i, j] = n * (0.5 if changed else 1.0) / unchanged
    return out


def test_class_balanced_position_weights():
    from hicd_mm.models.losses import class_balanced_position_weights
    g = torch.Generator().manual_seed(0)
    label = (torch.rand(4, 1, 6, 5, generator=g) < 0.2).long()
    label[1] = 0  # no change in sample 1
    label[2, 0, 0, :3] = 255  # ignored pixels
    w = class_balanced_position_weights(label, (6, 5))
    torch.testing.assert_close(w, naive_balanced_weights(label))
    for i in (0, 3):
        changed = label[i].flatten() == 1
        assert w[i][changed].sum().item() == pytest.approx(15, rel=1e-5)
        assert w[i][~changed].sum().item() == pytest.approx(15, rel=1e-5)
    assert torch.allclose(w[1], torch.ones(30))
    assert (w[2].reshape(6, 5)[0, :3] == 0).all()
    # On a coarser grid a cell counts by its changed fraction: 2x2 blocks of a 4x4 label.
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    label[0, :2, :2] = 1  # one fully changed cell
    label[0, 2, 2] = 1  # a quarter of another cell
    w = class_balanced_position_weights(label, (2, 2))
    c = torch.tensor([1.0, 0.0, 0.0, 0.25])
    u = 1 - c
    expected = 4 * (c / (2 * c.sum()) + u / (2 * u.sum()))
    torch.testing.assert_close(w[0], expected)


def weighted_self_explicit(x_s, x_t, w, mode):
    a_s, a_t = x_s.transpose(1, 2) @ x_s, x_t.transpose(1, 2) @ x_t
    sq = (a_s - a_t).square()
    weight = w[:, :, None] * (w[:, None, :] if mode == 'pairs' else 1)
    return (sq * weight).sum() / sq.numel()


@pytest.mark.parametrize('mode', ['rows', 'pairs'])
def test_class_balanced_self_and_global_match_explicit(mode):
    g = torch.Generator().manual_seed(5)
    s = torch.randn(3, 6, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 9, 5, 4, generator=g, dtype=torch.float64)
    label = (torch.rand(3, 1, 5, 4, generator=g) < 0.3).long()
    w = naive_balanced_weights(label).double()
    for loss_cls, reference in ((SelfCorrelationLoss, weighted_self_explicit),
                                (GlobalCorrelationLoss, cross_image_weighted_explicit)):
        loss = loss_cls(class_balance=mode)(s, t, label)
        expected = reference(flatten_features(s), flatten_features(t), w, mode)
        # The weights are float32 (computed from the label), the features float64.
        assert rel(loss, expected) < 1e-6
        (grad,) = torch.autograd.grad(loss, s)
        (grad_ref,) = torch.autograd.grad(expected, s)
        assert rel(grad, grad_ref) < 1e-6
    # A label without change gives weights 1: the plain loss.
    zero = torch.zeros_like(label)
    for loss_cls in (SelfCorrelationLoss, GlobalCorrelationLoss):
        assert rel(loss_cls(class_balance=mode)(s, t, zero), loss_cls()(s, t)) < 1e-12


def cross_image_weighted_explicit(x_s, x_t, w, mode):
    b, _, n = x_s.shape
    total = x_s.new_zeros(())
    for i in range(b):
        for j in range(b):
            if i != j:
                sq = (x_s[i].T @ x_s[j] - x_t[i].T @ x_t[j]).square()
                weight = w[i][:, None] * (w[j][None, :] if mode == 'pairs' else 1)
                total = total + (sq * weight).sum()
    return total / (b * (b - 1) * n * n)


def test_class_balanced_kl_rows_match_explicit():
    g = torch.Generator().manual_seed(6)
    s = torch.randn(2, 5, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 7, 4, 4, generator=g, dtype=torch.float64)
    label = (torch.rand(2, 4, 4, generator=g) < 0.3).long()
    w = naive_balanced_weights(label).double()
    xs, xt = flatten_features(s), flatten_features(t)
    loss = SelfCorrelationLoss(distance='kl', tau=0.5, class_balance='rows',
                               chunk_size=5)(s, t, label)
    expected = ref_impl.correlation_kl_explicit(xs, xs, xt, xt, 0.5, row_weights=w)
    assert rel(loss, expected) < 1e-6
    glob = GlobalCorrelationLoss(distance='kl', tau=0.1, class_balance='rows')(s, t, label)
    assert rel(glob, ref_impl.cross_image_correlation_kl_explicit(xs, xt, 0.1, w)) < 1e-6


# --------------------------------------------------------------------------- response KD
def naive_response_kd(z_s, z_t, tau):
    b, k, h, w = z_t.shape
    total = 0.0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                if k == 1:
                    p_t = torch.sigmoid(z_t[i, 0, y, x] / tau)
                    p_s = torch.sigmoid(z_s[i, 0, y, x] / tau)
                    total += p_t * torch.log(p_t / p_s) + (1 - p_t) * torch.log(
                        (1 - p_t) / (1 - p_s))
                else:
                    p_t = torch.softmax(z_t[i, :, y, x] / tau, 0)
                    p_s = torch.softmax(z_s[i, :, y, x] / tau, 0)
                    total += (p_t * (p_t.log() - p_s.log())).sum()
    return total / (b * h * w) * tau**2


@pytest.mark.parametrize('classes', [1, 2, 3])
@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_response_kd_matches_naive(classes, tau):
    from hicd_mm.models.losses import ResponseKDLoss
    g = torch.Generator().manual_seed(classes)
    z_s = torch.randn(2, classes, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_t = torch.randn(2, classes, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    loss = ResponseKDLoss(tau=tau, loss_weight=2.0)(z_s, z_t)
    assert rel(loss, 2 * naive_response_kd(z_s, z_t, tau)) < 1e-9
    loss.backward()
    assert z_t.grad is None and z_s.grad.abs().sum() > 0
    assert ResponseKDLoss()(z_s, z_s.detach().clone()).abs().item() < 1e-12


def test_response_kd_class_balance_resize_and_errors():
    from hicd_mm.models.losses import ResponseKDLoss
    g = torch.Generator().manual_seed(0)
    z_s, z_t = torch.randn(2, 2, 4, 4, generator=g), torch.randn(2, 2, 4, 4, generator=g)
    label = (torch.rand(2, 1, 4, 4, generator=g) < 0.25).long()
    w = naive_balanced_weights(label)
    log_p_s, log_p_t = torch.log_softmax(z_s, 1), torch.log_softmax(z_t, 1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).flatten(1)
    loss = ResponseKDLoss(class_balance=True)(z_s, z_t, label)
    assert rel(loss, (kl * w).mean()) < 1e-5
    # The student's logits are resized to the teacher's grid.
    small = torch.randn(2, 2, 2, 2, generator=g)
    resized = F.interpolate(small, size=(4, 4), mode='bilinear', align_corners=False)
    assert rel(ResponseKDLoss()(small, z_t), ResponseKDLoss()(resized, z_t)) < 1e-6
    with pytest.raises(ValueError, match='resize'):
        ResponseKDLoss(resize_mode='nearest')
    for kwargs in (dict(tau=0), dict(loss_weight=-1), dict(loss_name='kd')):
        with pytest.raises(ValueError):
            ResponseKDLoss(**kwargs)
    with pytest.raises(ValueError, match='classes'):
        ResponseKDLoss()(torch.randn(2, 1, 4, 4), z_t)
    with pytest.raises(ValueError, match='label'):
        ResponseKDLoss(class_balance=True)(z_s, z_t)
    assert MODELS.build(dict(type='ResponseKDLoss')).loss_name == 'loss_response_kd'


@pytest.mark.parametrize('make_loss', [
    lambda: SelfCorrelationLoss(), lambda: GlobalCorrelationLoss(),
    lambda: SelfCorrelationLoss(distance='kl', tau=0.5),
    lambda: GlobalCorrelationLoss(blocks='all'),
    lambda: SelfCorrelationLoss(gram_dtype='float64')])
def test_mixed_precision_does_not_lower_the_products(make_loss):
    """Under autocast (``--amp``) the products keep the accumulation dtype: same value, grad."""
    g = torch.Generator().manual_seed(3)
    s = torch.randn(3, 24, 12, 12, generator=g).requires_grad_()
    t = torch.randn(3, 24, 12, 12, generator=g)
    loss = make_loss()
    results = []
    for amp in (False, True):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            value = loss(s, t)
        results.append((value.detach(), torch.autograd.grad(value, s)[0]))
    (v0, g0), (v1, g1) = results
    assert v1.dtype == torch.float32
    assert rel(v1, v0) < 1e-6 and rel(g1, g0) < 1e-6


def test_pair_grams_under_autocast_are_float32():
    g = torch.Generator().manual_seed(4)
    pair = corr.prepare_pair(torch.randn(2, 8, 6, 6, generator=g),
                             torch.randn(2, 8, 6, 6, generator=g), corr.FeaturePreparation())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        grams = pair.grams(torch.float32)
    assert all(gram.dtype == torch.float32 for gram in grams)


@pytest.mark.parametrize('loss_type, kwargs, key', [
    ('SelfCorrelationLoss', {}, 'loss_self_corr'),
    ('CrossCorrelationLoss', {}, 'loss_cross_corr'),
    ('GlobalCorrelationLoss', {}, 'loss_global_corr'),
    ('ResponseKDLoss', {}, 'loss_response_kd'),
    ('FeatureMSELoss', dict(student_channels=4, teacher_channels=8), 'loss_feat_mse'),
    ('ChannelWiseDivergenceLoss', {}, 'loss_cwd')])
def test_every_distillation_loss_checks_its_weight_and_key(loss_type, kwargs, key):
    loss = MODELS.build(dict(type=loss_type, loss_weight=0.5, loss_name='loss_x', **kwargs))
    assert loss.loss_weight == 0.5 and loss.loss_name == 'loss_x'
    default = MODELS.build(dict(type=loss_type, **kwargs))
    assert default.loss_weight == 1.0 and default.loss_name == key
    assert MODELS.build(dict(type=loss_type, loss_name=None, **kwargs)).loss_name == key
    for weight in (-0.1, float('nan'), None, True):
        with pytest.raises(ValueError, match='loss_weight must be a number >= 0'):
            MODELS.build(dict(type=loss_type, loss_weight=weight, **kwargs))
    with pytest.raises(ValueError, match="loss_name must start with 'loss_'"):
        MODELS.build(dict(type=loss_type, loss_name='kd', **kwargs))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('grad', [True, False])
def test_l2_normalize_half_precision_stays_finite(dtype, grad):
    """float16 cannot hold eps ** 2 and over/underflows sums of squares: the norms are taken
    in float32, so a zero vector stays zero and large or tiny vectors get unit norm, with a
    gradient close to the float64 one. (At a zero vector the gradient is dy / eps = 1e6 dy,
    which float16 cannot hold: the test gives it dy = 0 there, as the loss terms do where
    student and teacher vanish together and as a ReLU's backward makes of it anyway.)"""
    x0 = torch.randn(2, 16, 4, generator=torch.Generator().manual_seed(51), dtype=torch.float64)
    x0[:, :, 0] = 0
    x0[:, :, 1] = 300.0  # sum of squares 1.44e6 > float16's 65504
    x0[:, :, 2] = 1e-4  # sum of squares 1.6e-7, below float16's smallest normal
    x = x0.to(dtype).requires_grad_(grad)
    y = corr.l2_normalize_positions(x)
    assert y.dtype == dtype
    norms = y.double().norm(dim=1)
    assert norms[:, 0].abs().max() == 0
    assert torch.allclose(norms[:, 1:], torch.ones_like(norms[:, 1:]), atol=1e-2)
    ref = corr.l2_normalize_positions(x.detach().double())
    assert (y.double() - ref).abs().max() < 1e-2
    if grad:
        probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(52))
        probe[:, :, 0] = 0
        (g,) = torch.autograd.grad((y * probe.to(dtype)).sum(), x)
        x64 = x.detach().double().requires_grad_()
        (g_ref,) = torch.autograd.grad((corr.l2_normalize_positions(x64) * probe.double()).sum(),
                                       x64)
        assert g.dtype == dtype and torch.isfinite(g).all()
        assert rel(g.double(), g_ref) < 2e-2


@pytest.mark.parametrize('module', [SelfCorrelationLoss(), GlobalCorrelationLoss()])
def test_half_precision_maps_with_a_zero_position_give_finite_losses(module):
    """ReLU maps in float16 (as under --amp on a GPU) with an all-zero position: value and
    gradient finite and close to float64's."""
    g = torch.Generator().manual_seed(53)
    s = torch.randn(3, 8, 6, 5, generator=g, dtype=torch.float64).relu()
    t = torch.randn(3, 8, 6, 5, generator=g, dtype=torch.float64).relu()
    s[:, :, 0, 0] = 0
    t[:, :, 0, 0] = 0
    half = s.half().requires_grad_()
    value = module(half, t.half())
    (grad,) = torch.autograd.grad(value, half)
    ref = module(s, t)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert abs(value.double() - ref) < 5e-3 * ref


def test_dense_weighted_grams_keep_the_accumulation_precision():
    """The dense path (most weights distinct) of bfloat16 inputs is as precise as the
    moved-position path: sqrt(w) is taken in the accumulation dtype, not rounded to bfloat16."""
    g = torch.Generator().manual_seed(54)
    x_s = torch.randn(3, 5, 30, generator=g).bfloat16()
    x_t = torch.randn(3, 4, 30, generator=g).bfloat16()
    w = weight_patterns()['distinct']
    grams = corr.weighted_pair_grams(x_s, x_t, w, torch.float32)
    expected = naive_weighted_grams(x_s.double(), x_t.double(), w.double())
    for got, ref in zip(grams, expected):
        assert got.dtype == torch.float32 and rel(got.double(), ref) < 1e-6


def test_change_fraction_on_a_grid_finer_in_one_dimension_only():
    """A label taller than the grid but narrower: rows are averaged, columns repeated (the
    change of one label row is not lost); equal to averaging the column-repeated label and to
    an explicit count."""
    label = torch.zeros(2, 8, 2, dtype=torch.long)
    label[0, 1, :] = 1
    label[1, :, 1] = 1
    label[1, 6, 0] = 255
    changed, valid = corr.change_fraction_on_grid(label, (4, 4))
    wide = label.repeat_interleave(2, dim=2)  # 8 x 4: coarser grid in both dimensions
    changed_ref, valid_ref = corr.change_fraction_on_grid(wide, (4, 4))
    assert torch.equal(changed, changed_ref) and torch.equal(valid, valid_ref)
    explicit = torch.zeros(2, 4, 4)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                pixels = label[b, 2 * i:2 * i + 2, j // 2]
                explicit[b, i, j] = (pixels == 1).float().mean()
    assert torch.allclose(changed.view(2, 4, 4), explicit)
    assert changed[0].view(4, 4)[0].tolist() == [0.5] * 4
