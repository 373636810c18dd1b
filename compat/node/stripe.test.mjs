// Official stripe-node SDK compatibility suite for stripe-twin.
// Starts nothing itself: point STRIPE_TWIN_URL at a running server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

const BASE = process.env.STRIPE_TWIN_URL || 'http://127.0.0.1:12111';
const base = new URL(BASE);
const sdkOptions = {
  host: base.hostname,
  port: Number(base.port || 80),
  protocol: 'http',
};

const randomKey = (prefix = 'sk_test_') => prefix + randomBytes(12).toString('hex');
const KEY = randomKey();
const stripe = new Stripe(KEY, sdkOptions);
const uniq = randomBytes(4).toString('hex');

// Posts a form the way a browser would, without following redirects.
async function postForm(url, fields) {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

function location(res, from) {
  const loc = res.headers.get('location');
  assert.ok(loc, `expected a Location header (status ${res.status})`);
  return new URL(loc, from).toString();
}

test('customers: create, retrieve, update, del', async () => {
  const email = `crud-${uniq}@example.com`;
  const created = await stripe.customers.create({
    email,
    name: 'Jenny Rosen',
    metadata: { suite: 'node' },
  });
  assert.match(created.id, /^cus_/);
  assert.equal(created.object, 'customer');
  assert.equal(created.email, email);
  assert.equal(created.metadata.suite, 'node');

  const retrieved = await stripe.customers.retrieve(created.id);
  assert.equal(retrieved.id, created.id);
  assert.equal(retrieved.name, 'Jenny Rosen');

  const updated = await stripe.customers.update(created.id, {
    name: 'Jenny Updated',
    metadata: { plan: 'pro' },
  });
  assert.equal(updated.name, 'Jenny Updated');
  assert.equal(updated.metadata.suite, 'node');
  assert.equal(updated.metadata.plan, 'pro');

  const deleted = await stripe.customers.del(created.id);
  assert.equal(deleted.id, created.id);
  assert.equal(deleted.deleted, true);

  const gone = await stripe.customers.retrieve(created.id);
  assert.equal(gone.deleted, true);
});

test('customers: list auto-pagination over more than 10 customers', async () => {
  // A fresh account so the count is exact; it holds only the fixture customer
  // (cus_ODQluYFNl44ODI, unless the server runs with --no-fixtures).
  const client = new Stripe(randomKey(), sdkOptions);
  const baseline = (await client.customers.list({ limit: 100 })).data.map((c) => c.id);
  const ids = [];
  for (let i = 0; i < 13; i++) {
    const c = await client.customers.create({ email: `page-${i}-${uniq}@example.com` });
    ids.push(c.id);
  }
  const seen = [];
  for await (const c of client.customers.list({ limit: 3 })) {
    seen.push(c.id);
  }
  assert.equal(seen.length, ids.length + baseline.length);
  assert.equal(new Set(seen).size, seen.length, 'no customer seen twice');
  // Newest first: ours (in reverse creation order), then the older fixture.
  assert.deepEqual(seen, [...[...ids].reverse(), ...baseline]);

  const firstPage = await client.customers.list({ limit: 3 });
  assert.equal(firstPage.object, 'list');
  assert.equal(firstPage.data.length, 3);
  assert.equal(firstPage.has_more, true);

  const viaHelper = await client.customers.list({ limit: 5 }).autoPagingToArray({ limit: 100 });
  assert.deepEqual(viaHelper.map((c) => c.id), seen);

  const byEmail = await client.customers.list({ limit: 4, email: `page-0-${uniq}@example.com` });
  assert.deepEqual(byEmail.data.map((c) => c.id), [ids[0]]);
});

test('customers: search', async () => {
  const email = `search-${uniq}@example.com`;
  const c = await stripe.customers.create({ email, metadata: { tag: `t${uniq}` } });
  await stripe.customers.create({ email: `other-${uniq}@example.com` });

  const byEmail = await stripe.customers.search({ query: `email:"${email}"` });
  assert.equal(byEmail.object, 'search_result');
  assert.deepEqual(byEmail.data.map((x) => x.id), [c.id]);

  const byMeta = await stripe.customers.search({ query: `metadata['tag']:'t${uniq}'` });
  assert.deepEqual(byMeta.data.map((x) => x.id), [c.id]);

  const found = [];
  for await (const x of stripe.customers.search({ query: `email~"${uniq}"`, limit: 1 })) {
    found.push(x.id);
  }
  assert.equal(found.length, 2);
  assert.ok(found.includes(c.id));
});

// Shared by the Amazon Pay SetupIntent flow and the subscription test.
const amazon = {};

test('Amazon Pay SetupIntent flow through the authorization page', async () => {
  const customer = await stripe.customers.create({
    description: 'My First Test Customer (created for API docs)',
  });
  const returnUrl = 'https://www.stripe.com';
  const si = await stripe.setupIntents.create({
    confirm: true,
    payment_method_types: ['amazon_pay'],
    payment_method_data: { type: 'amazon_pay' },
    return_url: returnUrl,
    usage: 'off_session',
    customer: customer.id,
  });
  assert.match(si.id, /^seti_/);
  assert.equal(si.status, 'requires_action');
  assert.equal(si.next_action.type, 'redirect_to_url');
  const authorizeUrl = si.next_action.redirect_to_url.url;
  assert.ok(authorizeUrl, 'next_action.redirect_to_url.url is set');
  assert.ok(si.client_secret.startsWith(`${si.id}_secret_`));

  const page = await fetch(authorizeUrl, { redirect: 'manual' });
  assert.equal(page.status, 200);
  await page.text();

  const res = await postForm(authorizeUrl, { outcome: 'authorize' });
  assert.equal(res.status, 303);
  await res.text();
  const back = new URL(location(res, authorizeUrl));
  assert.equal(back.searchParams.get('redirect_status'), 'succeeded');
  assert.equal(back.searchParams.get('setup_intent'), si.id);
  assert.equal(back.origin, new URL(returnUrl).origin);

  const done = await stripe.setupIntents.retrieve(si.id);
  assert.equal(done.status, 'succeeded');
  assert.ok(done.mandate, 'a mandate is created for off_session Amazon Pay');
  assert.match(typeof done.mandate === 'string' ? done.mandate : done.mandate.id, /^mandate_/);
  const pmId = typeof done.payment_method === 'string' ? done.payment_method : done.payment_method.id;
  assert.match(pmId, /^pm_/);

  const pm = await stripe.paymentMethods.retrieve(pmId);
  assert.equal(pm.type, 'amazon_pay');
  assert.equal(pm.customer, customer.id);

  amazon.customer = customer.id;
  amazon.paymentMethod = pmId;
});

test('subscription on the fixture price, charged off-session through Amazon Pay', async () => {
  assert.ok(amazon.paymentMethod, 'depends on the Amazon Pay SetupIntent test');
  const sub = await stripe.subscriptions.create({
    customer: amazon.customer,
    items: [{ price: 'price_G0FvDp6vZvdwRZ' }],
    default_payment_method: amazon.paymentMethod,
    off_session: true,
    expand: ['latest_invoice'],
  });
  assert.match(sub.id, /^sub_/);
  assert.equal(sub.status, 'active');
  assert.equal(sub.items.data[0].price.id, 'price_G0FvDp6vZvdwRZ');
  assert.equal(typeof sub.latest_invoice, 'object', 'latest_invoice is expanded');
  assert.match(sub.latest_invoice.id, /^in_/);
  assert.equal(sub.latest_invoice.status, 'paid');
  assert.equal(sub.latest_invoice.amount_paid, sub.latest_invoice.amount_due);
  assert.ok(sub.latest_invoice.amount_paid > 0);
});

test('setup-mode Checkout Session completed through its page with Amazon Pay', async () => {
  const customer = await stripe.customers.create({ email: `checkout-${uniq}@example.com` });
  const session = await stripe.checkout.sessions.create({
    mode: 'setup',
    payment_method_types: ['amazon_pay'],
    customer: customer.id,
    success_url: 'https://example.com/success?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'https://example.com/cancel',
  });
  assert.match(session.id, /^cs_test_/);
  assert.equal(session.status, 'open');
  assert.ok(session.url, 'a hosted session has a url');

  const page = await fetch(session.url, { redirect: 'manual' });
  assert.equal(page.status, 200);
  await page.text();

  const submitted = await postForm(session.url, { payment_method_type: 'amazon_pay' });
  assert.equal(submitted.status, 303);
  await submitted.text();
  const authorizeUrl = location(submitted, session.url);
  assert.match(new URL(authorizeUrl).pathname, /^\/authorize\//);

  const authorized = await postForm(authorizeUrl, { outcome: 'authorize' });
  assert.equal(authorized.status, 303);
  await authorized.text();
  const returnUrl = location(authorized, authorizeUrl);
  assert.match(new URL(returnUrl).pathname, /\/return$/);

  const returned = await fetch(returnUrl, { redirect: 'manual' });
  assert.equal(returned.status, 303);
  await returned.text();
  const success = new URL(location(returned, returnUrl));
  assert.equal(success.origin + success.pathname, 'https://example.com/success');
  assert.equal(success.searchParams.get('session_id'), session.id);

  const done = await stripe.checkout.sessions.retrieve(session.id, {
    expand: ['setup_intent.payment_method'],
  });
  assert.equal(done.status, 'complete');
  assert.equal(done.payment_status, 'no_payment_required');
  assert.equal(done.customer, customer.id);
  assert.equal(typeof done.setup_intent, 'object', 'setup_intent is expanded');
  assert.equal(done.setup_intent.status, 'succeeded');
  assert.equal(typeof done.setup_intent.payment_method, 'object', 'payment_method is expanded');
  assert.equal(done.setup_intent.payment_method.type, 'amazon_pay');
  assert.equal(done.setup_intent.payment_method.customer, customer.id);
});

test('webhook signatures verify with stripe.webhooks.constructEvent', async () => {
  const deliveries = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    // Own account, so only this test's events reach this endpoint.
    const client = new Stripe(randomKey(), sdkOptions);
    const { port } = server.address();
    const endpoint = await client.webhookEndpoints.create({
      url: `http://127.0.0.1:${port}/webhooks/stripe`,
      enabled_events: ['customer.created'],
    });
    assert.match(endpoint.id, /^we_/);
    const secret = endpoint.secret;
    assert.match(secret, /^whsec_/);

    const customer = await client.customers.create({ email: `hook-${uniq}@example.com` });

    const deadline = Date.now() + 10_000;
    while (deliveries.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(deliveries.length > 0, 'a delivery arrived within 10 s');
    const { headers, body } = deliveries[0];
    const signature = headers['stripe-signature'];
    assert.ok(signature, 'Stripe-Signature header present');

    const event = client.webhooks.constructEvent(body, signature, secret);
    assert.equal(event.type, 'customer.created');
    assert.equal(event.data.object.id, customer.id);
    assert.match(event.id, /^evt_/);

    // Also as a string, and with the async variant.
    const again = await client.webhooks.constructEventAsync(body.toString('utf8'), signature, secret);
    assert.equal(again.id, event.id);

    const tampered = Buffer.from(body.toString('utf8').replace(customer.id, 'cus_tampered'));
    assert.notDeepEqual(tampered, body);
    assert.throws(
      () => client.webhooks.constructEvent(tampered, signature, secret),
      Stripe.errors.StripeSignatureVerificationError,
    );
    assert.throws(
      () => client.webhooks.constructEvent(body, signature, 'whsec_wrong_secret'),
      Stripe.errors.StripeSignatureVerificationError,
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('errors: StripeInvalidRequestError carries param', async () => {
  await assert.rejects(
    stripe.customers.create({ bogus_param: 'x' }),
    (err) => {
      assert.ok(err instanceof Stripe.errors.StripeInvalidRequestError, err.constructor.name);
      assert.equal(err.type, 'StripeInvalidRequestError');
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'parameter_unknown');
      assert.equal(err.param, 'bogus_param');
      assert.match(err.requestId, /^req_/);
      return true;
    },
  );
  await assert.rejects(
    stripe.customers.retrieve('cus_does_not_exist'),
    (err) => {
      assert.ok(err instanceof Stripe.errors.StripeInvalidRequestError, err.constructor.name);
      assert.equal(err.statusCode, 404);
      assert.equal(err.code, 'resource_missing');
      assert.equal(err.param, 'id');
      return true;
    },
  );
});

test('errors: StripeAuthenticationError for a live key', async () => {
  const live = new Stripe(randomKey('sk_live_'), sdkOptions);
  await assert.rejects(live.customers.list({ limit: 1 }), (err) => {
    assert.ok(err instanceof Stripe.errors.StripeAuthenticationError, err.constructor.name);
    assert.equal(err.statusCode, 401);
    return true;
  });
});

test('errors: StripeCardError for a declined card', async () => {
  await assert.rejects(
    stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method_types: ['card'],
      payment_method: 'pm_card_chargeDeclined',
      confirm: true,
    }),
    (err) => {
      assert.ok(err instanceof Stripe.errors.StripeCardError, err.constructor.name);
      assert.equal(err.type, 'StripeCardError');
      assert.equal(err.statusCode, 402);
      assert.equal(err.code, 'card_declined');
      assert.equal(err.decline_code, 'generic_decline');
      return true;
    },
  );
});

test('errors: StripeIdempotencyError for a reused key with other params', async () => {
  const idempotencyKey = `idem-${randomBytes(8).toString('hex')}`;
  const first = await stripe.customers.create({ email: `idem-a-${uniq}@example.com` }, { idempotencyKey });
  const replay = await stripe.customers.create({ email: `idem-a-${uniq}@example.com` }, { idempotencyKey });
  assert.equal(replay.id, first.id, 'same key and params replay the first response');
  await assert.rejects(
    stripe.customers.create({ email: `idem-b-${uniq}@example.com` }, { idempotencyKey }),
    (err) => {
      assert.ok(err instanceof Stripe.errors.StripeIdempotencyError, err.constructor.name);
      assert.equal(err.statusCode, 400);
      return true;
    },
  );
});
