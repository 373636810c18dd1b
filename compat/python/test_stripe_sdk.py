"""stripe-twin compatibility suite for the official stripe-python SDK.

Starts nothing itself: run stripe-twin first and point STRIPE_TWIN_URL at it
(e.g. http://127.0.0.1:12111). Every test module run uses a fresh random
sk_test_ key, i.e. its own isolated account.
"""

import http.server
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import stripe

BASE = os.environ.get("STRIPE_TWIN_URL", "").rstrip("/")
if not BASE:
    pytest.skip("STRIPE_TWIN_URL is not set", allow_module_level=True)

API_KEY = "sk_test_compatpy_" + secrets.token_hex(12)
PRICE = "price_G0FvDp6vZvdwRZ"  # fixture price: 15.00 USD per month


@pytest.fixture(autouse=True, scope="module")
def _configure_sdk():
    old = (stripe.api_key, stripe.api_base, stripe.max_network_retries)
    stripe.api_key = API_KEY
    stripe.api_base = BASE
    stripe.max_network_retries = 0
    yield
    stripe.api_key, stripe.api_base, stripe.max_network_retries = old


def uniq(prefix="c"):
    return f"{prefix}{secrets.token_hex(6)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def raw_http(method, url, form=None):
    """Plain HTTP request, no redirects followed; returns (status, headers, body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _opener.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# --------------------------------------------------------------------------
# 1. Customers
# --------------------------------------------------------------------------


def test_customer_crud():
    email = f"{uniq()}@example.com"
    c = stripe.Customer.create(email=email, name="Jenny Rosen", metadata={"k": "v"})
    assert c.id.startswith("cus_")
    assert c.object == "customer"
    assert c.email == email
    assert c.metadata["k"] == "v"

    got = stripe.Customer.retrieve(c.id)
    assert got.id == c.id and got.name == "Jenny Rosen"

    upd = stripe.Customer.modify(c.id, description="updated", metadata={"k": "w"})
    assert upd.description == "updated"
    assert upd.metadata["k"] == "w"
    assert stripe.Customer.retrieve(c.id).description == "updated"

    deleted = stripe.Customer.delete(c.id)
    assert deleted.id == c.id and deleted.deleted is True
    again = stripe.Customer.retrieve(c.id)
    assert again.deleted is True


def test_customer_list_auto_pagination():
    created = {stripe.Customer.create(email=f"{uniq('page')}@example.com").id for _ in range(13)}
    page = stripe.Customer.list(limit=5)
    assert len(page.data) == 5 and page.has_more is True
    seen = [c.id for c in page.auto_paging_iter()]
    assert len(seen) == len(set(seen)), "auto-pagination returned duplicates"
    assert created <= set(seen)
    assert len(seen) > 10


def test_customer_search():
    email = f"{uniq('search')}@example.com"
    c = stripe.Customer.create(email=email)
    stripe.Customer.create(email=f"{uniq('other')}@example.com")
    res = stripe.Customer.search(query=f"email:'{email}'")
    assert res.object == "search_result"
    assert [x.id for x in res.data] == [c.id]
    # auto-pagination over search results too
    assert [x.id for x in res.auto_paging_iter()] == [c.id]


def test_stripe_client_base_addresses():
    client = stripe.StripeClient(API_KEY, base_addresses={"api": BASE}, max_network_retries=0)
    email = f"{uniq('client')}@example.com"
    c = client.v1.customers.create(params={"email": email})
    assert client.v1.customers.retrieve(c.id).email == email
    # same key, same account as the global-configuration calls
    assert stripe.Customer.retrieve(c.id).id == c.id
    # the fixture price exists in every account
    price = client.v1.prices.retrieve(PRICE)
    assert price.unit_amount == 1500 and price.recurring.interval == "month"


# --------------------------------------------------------------------------
# 2. Amazon Pay SetupIntent flow (seed 000_e94208b0303fa4f3) and
# 3. a subscription charged through its mandate
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def amazon_pay_setup(_configure_sdk):
    customer = stripe.Customer.create(description="My First Test Customer (created for API docs)")
    seti = stripe.SetupIntent.create(
        confirm=True,
        return_url="https://www.stripe.com",
        usage="off_session",
        customer=customer.id,
        payment_method_data={"type": "amazon_pay"},
        payment_method_types=["amazon_pay"],
        mandate_data={
            "customer_acceptance": {
                "type": "online",
                "online": {"ip_address": "127.0.0.0", "user_agent": "device"},
            }
        },
    )
    return customer, seti


def test_amazon_pay_setup_intent(amazon_pay_setup):
    customer, seti = amazon_pay_setup
    assert seti.status == "requires_action"
    assert seti.next_action.type == "redirect_to_url"
    url = seti.next_action.redirect_to_url.url
    assert url.startswith(BASE + "/authorize/")

    status, headers, _ = raw_http("POST", url, {"outcome": "authorize"})
    assert status == 303
    location = headers["Location"]
    assert location.startswith("https://www.stripe.com")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    assert q["redirect_status"] == ["succeeded"]
    assert q["setup_intent"] == [seti.id]

    done = stripe.SetupIntent.retrieve(seti.id)
    assert done.status == "succeeded"
    assert done.mandate and done.mandate.startswith("mandate_")
    mandate = stripe.Mandate.retrieve(done.mandate)
    assert mandate.status == "active"
    pm = stripe.PaymentMethod.retrieve(done.payment_method)
    assert pm.type == "amazon_pay" and pm.customer == customer.id


def test_subscription_on_fixture_price(amazon_pay_setup):
    customer, seti = amazon_pay_setup
    seti = stripe.SetupIntent.retrieve(seti.id)
    if seti.status != "succeeded":
        pytest.skip("the SetupIntent was not authorized (see test_amazon_pay_setup_intent)")
    sub = stripe.Subscription.create(
        customer=customer.id,
        items=[{"price": PRICE}],
        default_payment_method=seti.payment_method,
        off_session=True,
        expand=["latest_invoice"],
    )
    assert sub.status == "active"
    assert sub.default_payment_method == seti.payment_method
    assert sub["items"].data[0].price.id == PRICE
    inv = sub.latest_invoice
    assert isinstance(inv, stripe.Invoice)
    assert inv.status == "paid"
    assert inv.amount_paid == 1500 and inv.currency == "usd"


# --------------------------------------------------------------------------
# 4. Setup-mode Checkout Session completed through its page
# --------------------------------------------------------------------------


def test_checkout_setup_mode_via_page():
    customer = stripe.Customer.create(email=f"{uniq('co')}@example.com")
    session = stripe.checkout.Session.create(
        mode="setup",
        payment_method_types=["amazon_pay"],
        customer=customer.id,
        success_url="https://example.com/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="https://example.com/cancel",
    )
    assert session.status == "open" and session.url
    assert session.url.startswith(BASE + "/c/pay/")

    status, headers, _ = raw_http("POST", session.url, {"payment_method_type": "amazon_pay"})
    assert status == 303
    authorize_url = urllib.parse.urljoin(session.url, headers["Location"])
    assert "/authorize/" in authorize_url

    status, headers, _ = raw_http("POST", authorize_url, {"outcome": "authorize"})
    assert status == 303
    return_url = urllib.parse.urljoin(authorize_url, headers["Location"])
    assert urllib.parse.urlparse(return_url).path.endswith("/return")

    status, headers, _ = raw_http("GET", return_url)
    assert status == 303
    assert headers["Location"] == f"https://example.com/success?session_id={session.id}"

    done = stripe.checkout.Session.retrieve(session.id, expand=["setup_intent.payment_method"])
    assert done.status == "complete"
    assert done.setup_intent.status == "succeeded"
    assert done.setup_intent.payment_method.type == "amazon_pay"
    assert done.setup_intent.payment_method.customer == customer.id


# --------------------------------------------------------------------------
# 5. Webhook signatures verified with stripe.Webhook.construct_event
# --------------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.cond:
            self.server.received.append((body, dict(self.headers)))
            self.server.cond.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.received = []
    srv.cond = threading.Condition()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_webhook_signature_construct_event(receiver):
    url = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/stripe"
    endpoint = stripe.WebhookEndpoint.create(url=url, enabled_events=["customer.created"])
    secret = endpoint.secret
    assert secret and secret.startswith("whsec_")
    try:
        customer = stripe.Customer.create(email=f"{uniq('wh')}@example.com")

        def find():
            for body, headers in receiver.received:
                obj = json.loads(body)
                if obj["type"] == "customer.created" and obj["data"]["object"]["id"] == customer.id:
                    return body, headers
            return None

        deadline = time.monotonic() + 10
        with receiver.cond:
            while (hit := find()) is None and time.monotonic() < deadline:
                receiver.cond.wait(timeout=0.2)
        assert hit is not None, "no customer.created delivery within 10 s"
        body, headers = hit
        sig = {k.lower(): v for k, v in headers.items()}["stripe-signature"]

        event = stripe.Webhook.construct_event(body, sig, secret)
        assert event.type == "customer.created"
        assert event.data.object.id == customer.id
        assert isinstance(event, stripe.Event)

        tampered = body.replace(customer.id.encode(), b"cus_tampered0000")
        assert tampered != body
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(tampered, sig, secret)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, sig, "whsec_wrong")
    finally:
        stripe.WebhookEndpoint.delete(endpoint.id)


# --------------------------------------------------------------------------
# 6. Error classes as the SDK maps them
# --------------------------------------------------------------------------


def test_invalid_request_error_with_param():
    with pytest.raises(stripe.InvalidRequestError) as ei:
        stripe.Customer.retrieve("cus_missing")
    assert ei.value.http_status == 404
    assert ei.value.code == "resource_missing"
    assert ei.value.param == "id"

    with pytest.raises(stripe.InvalidRequestError) as ei:
        stripe.Customer.create(email="not-an-email")
    assert ei.value.http_status == 400
    assert ei.value.param == "email"

    with pytest.raises(stripe.InvalidRequestError) as ei:
        stripe.Customer.create(metadata={"a": "b"}, bogus_param="x")
    assert ei.value.code == "parameter_unknown"
    assert ei.value.param == "bogus_param"


def test_authentication_error():
    with pytest.raises(stripe.AuthenticationError) as ei:
        stripe.Customer.list(api_key="sk_live_nope")
    assert ei.value.http_status == 401

    with pytest.raises(stripe.AuthenticationError):
        stripe.Customer.list(api_key="not_a_key")


def test_card_error():
    with pytest.raises(stripe.CardError) as ei:
        stripe.PaymentIntent.create(
            amount=1000,
            currency="usd",
            payment_method="pm_card_chargeDeclined",
            payment_method_types=["card"],
            confirm=True,
        )
    err = ei.value
    assert err.http_status == 402
    assert err.code == "card_declined"
    assert err.error.decline_code == "generic_decline"
    assert err.error.payment_intent.status == "requires_payment_method"


def test_idempotency_error():
    key = "compat-" + secrets.token_hex(8)
    email = f"{uniq('idem')}@example.com"
    first = stripe.Customer.create(email=email, idempotency_key=key)
    replay = stripe.Customer.create(email=email, idempotency_key=key)
    assert replay.id == first.id
    assert replay.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as ei:
        stripe.Customer.create(email=f"{uniq('idem2')}@example.com", idempotency_key=key)
    assert ei.value.http_status == 400


# --------------------------------------------------------------------------
# Refunds
# --------------------------------------------------------------------------


def test_partial_refunds_then_over_refund_refused():
    pi = stripe.PaymentIntent.create(
        amount=2000, currency="usd", payment_method="pm_card_visa", payment_method_types=["card"], confirm=True
    )
    first = stripe.Refund.create(payment_intent=pi.id, amount=500)
    assert first.status == "succeeded" and first.amount == 500
    second = stripe.Refund.create(charge=pi.latest_charge, amount=1000)
    assert second.charge == pi.latest_charge
    charge = stripe.Charge.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 1500 and charge.refunded is False
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe.Refund.create(charge=charge.id, amount=600)
    assert refused.value.code == "amount_too_large"
    assert "greater than unrefunded amount on charge ($5.00)" in str(refused.value)
    listed = stripe.Refund.list(charge=charge.id)
    assert [r.id for r in listed.data] == [second.id, first.id]
    updated = stripe.Refund.modify(first.id, metadata={"order": "7"})
    assert updated.metadata["order"] == "7"
