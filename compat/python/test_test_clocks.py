"""Stripe's test clocks through the official stripe-python SDK, the way
Stripe's guide drives them: create a clock, put a customer on it, subscribe,
advance, poll until ready, check what time did.

Starts nothing itself: run stripe-twin first and point STRIPE_TWIN_URL at it.
Each test uses its own random sk_test_ key, i.e. its own account.
"""

import os
import secrets
import time

import pytest
import stripe

BASE = os.environ.get("STRIPE_TWIN_URL", "").rstrip("/")
if not BASE:
    pytest.skip("STRIPE_TWIN_URL is not set", allow_module_level=True)

DAY, HOUR = 86400, 3600
T0 = 1767225600  # 2026-01-01 00:00:00 UTC
Clocks = stripe.test_helpers.TestClock


@pytest.fixture(autouse=True)
def _account():
    old = (stripe.api_key, stripe.api_base, stripe.max_network_retries)
    stripe.api_key = "sk_test_clockspy_" + secrets.token_hex(12)
    stripe.api_base = BASE
    stripe.max_network_retries = 0
    yield
    stripe.api_key, stripe.api_base, stripe.max_network_retries = old


def advance(clock, to):
    started = Clocks.advance(clock.id, frozen_time=to)
    assert started.status == "advancing"
    assert started.status_details.advancing.target_frozen_time == to
    deadline = time.monotonic() + 30
    while True:
        now = Clocks.retrieve(clock.id)
        if now.status != "advancing":
            assert now.status == "ready"
            assert now.frozen_time == to
            return now
        assert time.monotonic() < deadline, "the clock kept advancing"
        time.sleep(0.02)


def customer_on(clock, card="pm_card_visa"):
    customer = stripe.Customer.create(test_clock=clock.id, email="clock@example.com")
    pm = stripe.PaymentMethod.attach(card, customer=customer.id)
    stripe.Customer.modify(customer.id, invoice_settings={"default_payment_method": pm.id})
    return customer


def monthly_price(amount):
    return stripe.Price.create(
        currency="usd", unit_amount=amount, recurring={"interval": "month"}, product_data={"name": "Plan"}
    )


def invoices_of(subscription):
    return list(reversed(stripe.Invoice.list(subscription=subscription.id, limit=100).data))


def test_a_monthly_subscription_renews_and_is_paid():
    clock = Clocks.create(frozen_time=T0, name="renewal")
    assert clock.object == "test_helpers.test_clock" and clock.status == "ready"
    customer = customer_on(clock)
    assert customer.test_clock == clock.id and customer.created == T0
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": monthly_price(1500).id}])
    assert sub.status == "active" and sub.test_clock == clock.id
    item = sub["items"].data[0]
    end = item.current_period_end
    assert end == T0 + 31 * DAY
    advance(clock, end + HOUR)
    renewed = stripe.Subscription.retrieve(sub.id)
    assert renewed["items"].data[0].current_period_start == end
    assert renewed["items"].data[0].current_period_end == end + 28 * DAY  # February
    first, renewal = invoices_of(sub)
    assert first.billing_reason == "subscription_create"
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.status == "paid" and renewal.amount_paid == 1500
    assert renewal.created == end and renewal.status_transitions.paid_at == end + HOUR
    assert renewal.test_clock == clock.id


def test_a_card_that_fails_later_ends_in_cancellation_after_the_retries():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock)
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": monthly_price(2000).id}])
    failing = stripe.PaymentMethod.attach("pm_card_chargeCustomerFail", customer=customer.id)
    stripe.Customer.modify(customer.id, invoice_settings={"default_payment_method": failing.id})
    end = sub["items"].data[0].current_period_end
    advance(clock, end + HOUR)
    assert stripe.Subscription.retrieve(sub.id).status == "past_due"
    renewal = invoices_of(sub)[-1]
    assert renewal.status == "open" and renewal.attempt_count == 1
    assert renewal.next_payment_attempt == end + HOUR + DAY
    # Smart Retries: 8 tries within 2 weeks.
    for days in (1, 3, 5, 7, 9, 11, 14):
        advance(clock, end + HOUR + days * DAY)
    renewal = stripe.Invoice.retrieve(renewal.id)
    assert renewal.attempt_count == 8 and renewal.next_payment_attempt is None
    ended = stripe.Subscription.retrieve(sub.id)
    assert ended.status == "canceled"
    assert ended.cancellation_details.reason == "payment_failed"


def test_a_3ds_card_at_signup_leaves_it_incomplete_then_expired():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock, "pm_card_threeDSecure2Required")
    sub = stripe.Subscription.create(
        customer=customer.id, items=[{"price": monthly_price(1500).id}], payment_behavior="allow_incomplete"
    )
    assert sub.status == "incomplete"
    advance(clock, T0 + DAY)
    assert stripe.Subscription.retrieve(sub.id).status == "incomplete_expired"
    assert invoices_of(sub)[0].status == "void"


def test_a_trial_warns_three_days_ahead_then_charges():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock)
    sub = stripe.Subscription.create(
        customer=customer.id, items=[{"price": monthly_price(1500).id}], trial_period_days=7
    )
    assert sub.status == "trialing"
    advance(clock, T0 + 5 * DAY)
    warned = stripe.Event.list(type="customer.subscription.trial_will_end").data
    assert len(warned) == 1 and warned[0].created == sub.trial_end - 3 * DAY
    advance(clock, sub.trial_end + HOUR)
    assert stripe.Subscription.retrieve(sub.id).status == "active"
    trial, paid = invoices_of(sub)
    assert trial.amount_due == 0
    assert paid.status == "paid" and paid.amount_paid == 1500


def test_cancel_at_period_end_cancels_at_the_period_end():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock)
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": monthly_price(1500).id}])
    end = sub["items"].data[0].current_period_end
    scheduled = stripe.Subscription.modify(sub.id, cancel_at_period_end=True)
    # Stripe's canceled_at: the time the cancellation was requested.
    assert scheduled.cancel_at == end and scheduled.canceled_at == T0
    advance(clock, end + 2 * HOUR)
    ended = stripe.Subscription.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == end and ended.canceled_at == T0
    assert len(invoices_of(sub)) == 1


def test_an_upgrade_then_a_downgrade_bill_and_credit_the_prorations():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock)
    cheap, dear = monthly_price(1000), monthly_price(3000)
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": cheap.id}])
    item = sub["items"].data[0].id
    advance(clock, T0 + 10 * DAY)
    stripe.Subscription.modify(sub.id, items=[{"id": item, "price": dear.id}], proration_behavior="always_invoice")
    upgrade = invoices_of(sub)[-1]
    # 21 of 31 days left: -1000 * 21/31 + 3000 * 21/31, rounded per line.
    assert upgrade.billing_reason == "subscription_update"
    assert upgrade.total == -677 + 2032 and upgrade.status == "paid"
    advance(clock, T0 + 15 * DAY)
    stripe.Subscription.modify(sub.id, items=[{"id": item, "price": cheap.id}], proration_behavior="always_invoice")
    downgrade = invoices_of(sub)[-1]
    # 16 of 31 days left: a credit of 3000 * 16/31 - 1000 * 16/31.
    assert downgrade.total == -1548 + 516
    assert stripe.Customer.retrieve(customer.id).balance == -1548 + 516
    # The next renewal uses the credit first.
    advance(clock, T0 + 31 * DAY + HOUR)
    renewal = invoices_of(sub)[-1]
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.total == 1000 and renewal.starting_balance == -1032
    assert renewal.amount_due == 0 and renewal.ending_balance == -32
    assert renewal.status == "paid"
    assert stripe.Customer.retrieve(customer.id).balance == -32


def test_stripes_limits_apply():
    clock = Clocks.create(frozen_time=T0)
    for _ in range(3):
        stripe.Customer.create(test_clock=clock.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe.Customer.create(test_clock=clock.id)
    assert refused.value.param == "test_clock"
    customer = stripe.Customer.list(test_clock=clock.id, limit=1).data[0]
    pm = stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
    stripe.Subscription.create(
        customer=customer.id, items=[{"price": monthly_price(1500).id}], default_payment_method=pm.id
    )
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        Clocks.advance(clock.id, frozen_time=T0 + 90 * DAY)
    assert "You can only advance it up to" in str(too_far.value)
    assert too_far.value.param == "frozen_time"


def test_deleting_a_clock_deletes_its_customers():
    clock = Clocks.create(frozen_time=T0)
    customer = customer_on(clock)
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": monthly_price(1500).id}])
    deleted = Clocks.delete(clock.id)
    assert deleted.deleted is True
    assert stripe.Customer.retrieve(customer.id).deleted is True
    assert stripe.Subscription.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as gone:
        Clocks.retrieve(clock.id)
    assert "No such billingclock" in str(gone.value)
