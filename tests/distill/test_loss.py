import torch

from mia_kd.distill.loss import distill_loss, kd_loss, lm_loss


def _logits(seed: int, shape=(3, 7, 11)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_kd_loss_is_zero_for_identical_logits():
    logits = _logits(0)
    mask = torch.ones(3, 7, dtype=torch.long)
    assert kd_loss(logits, logits.clone(), mask, temperature=2.0).item() == 0.0


def test_kd_loss_is_positive_for_different_logits_and_scales_with_t_squared_at_small_gaps():
    student, teacher = _logits(0), _logits(1)
    mask = torch.ones(3, 7, dtype=torch.long)
    assert kd_loss(student, teacher, mask, temperature=1.0) > 0


def test_losses_are_finite_zero_on_a_fully_masked_batch():
    mask = torch.zeros(3, 7, dtype=torch.long)
    ids = torch.randint(0, 11, (3, 7))
    for value in (
        kd_loss(_logits(0), _logits(1), mask, temperature=2.0),
        lm_loss(_logits(0), ids, mask),
        distill_loss(_logits(0), _logits(1), ids, mask, temperature=2.0, alpha=0.5),
    ):
        assert torch.isfinite(value) and value.item() == 0.0


def test_padding_does_not_change_the_losses():
    logits, teacher = _logits(0, (1, 5, 11)), _logits(1, (1, 5, 11))
    ids = torch.randint(0, 11, (1, 5))
    mask = torch.ones(1, 5, dtype=torch.long)
    padded = lambda t, fill: torch.cat([t, fill], dim=1)  # noqa: E731
    p_logits = padded(logits, torch.randn(1, 3, 11))
    p_teacher = padded(teacher, torch.randn(1, 3, 11))
    p_ids = padded(ids, torch.zeros(1, 3, dtype=torch.long))
    p_mask = padded(mask, torch.zeros(1, 3, dtype=torch.long))
    assert torch.allclose(lm_loss(logits, ids, mask), lm_loss(p_logits, p_ids, p_mask))
    assert torch.allclose(kd_loss(logits, teacher, mask, temperature=2.0), kd_loss(p_logits, p_teacher, p_mask, temperature=2.0))


def test_lm_loss_predicts_the_next_token_not_the_same_one():
    # Logits that put all mass on the *next* token give ~0 loss; on the same token, a large loss.
    ids = torch.tensor([[1, 2, 3, 4]])
    mask = torch.ones_like(ids)
    next_tok = torch.full((1, 4, 6), -30.0)
    same_tok = torch.full((1, 4, 6), -30.0)
    for t in range(4):
        if t < 3:
            next_tok[0, t, ids[0, t + 1]] = 30.0
        same_tok[0, t, ids[0, t]] = 30.0
    assert lm_loss(next_tok, ids, mask).item() < 1e-6
    assert lm_loss(same_tok, ids, mask).item() > 10


def test_alpha_mixes_ce_and_kd():
    logits, teacher = _logits(0), _logits(1)
    ids = torch.randint(0, 11, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    ce, kd = lm_loss(logits, ids, mask), kd_loss(logits, teacher, mask, temperature=3.0)
    assert torch.allclose(distill_loss(logits, teacher, ids, mask, temperature=3.0, alpha=0.0), ce)
    assert torch.allclose(distill_loss(logits, teacher, ids, mask, temperature=3.0, alpha=1.0), kd)
    assert torch.allclose(distill_loss(logits, teacher, ids, mask, temperature=3.0, alpha=0.25), 0.75 * ce + 0.25 * kd)


def test_the_fused_distill_loss_has_the_value_and_gradient_of_its_two_parts():
    # distill_loss writes its gradient out by hand; it must equal autograd through lm_loss and kd_loss,
    # with padding, at T != 1 and at both ends of alpha.
    ids = torch.randint(0, 11, (3, 7), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    teacher = _logits(1)
    for temperature, alpha in ((1.0, 0.5), (2.0, 0.5), (3.0, 0.0), (0.5, 1.0), (2.0, 0.9)):
        fused, parts = _logits(0).requires_grad_(), _logits(0).requires_grad_()
        got = distill_loss(fused, teacher, ids, mask, temperature=temperature, alpha=alpha)
        want = (1 - alpha) * lm_loss(parts, ids, mask) + alpha * kd_loss(parts, teacher, mask, temperature=temperature)
        (got * 1.7).backward()
        (want * 1.7).backward()
        assert torch.allclose(got, want, atol=1e-6), (temperature, alpha)
        assert torch.allclose(fused.grad, parts.grad, atol=1e-7), (temperature, alpha)
        assert fused.grad[:, -1].abs().max() == 0  # the last position predicts nothing
        assert fused.grad[2, 2:].abs().max() == 0  # nor do positions whose next token is padding


def test_the_fused_distill_loss_keeps_the_logits_dtype_and_sends_nothing_to_the_teacher():
    ids = torch.randint(0, 11, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    student = _logits(0).to(torch.bfloat16).requires_grad_()
    teacher = _logits(1).requires_grad_()
    loss = distill_loss(student, teacher, ids, mask, temperature=2.0, alpha=0.5)
    loss.backward()
    assert loss.dtype == torch.bfloat16 and student.grad.dtype == torch.bfloat16
    assert teacher.grad is None
