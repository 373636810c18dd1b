//! The object registry: what stripe-twin knows about each Stripe object
//! type, declared once beside its resource (`SPEC` in each resource module)
//! and read by expand, fixtures, ids, error messages and the route check.
//! The list of every type is assembled in `resources::REGISTRY`; the layers
//! below resources get it through the app state, so they import no resource.

/// What `expand[]` can do with one field of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expansion {
    /// An ID string that expands to the object it names (`to`, the type
    /// Stripe's spec says it points at; `payment_source` for the
    /// polymorphic sources).
    Reference { to: &'static str },
    /// Stored with the object but shown only when expanded.
    Hidden,
    /// A list or object of `of`s always shown in place, which deeper paths
    /// step into (`items.data.price.product` on a subscription).
    Embedded { of: &'static str },
    /// A list of the customer's related objects, built when expanded.
    Related {
        object: &'static str,
        url_suffix: &'static str,
    },
    /// A list of the objects whose `field` names this one (an invoice's
    /// payments, a charge's refunds); `url` with `{id}` for this one's ID.
    Children {
        object: &'static str,
        field: &'static str,
        url: &'static str,
    },
}

/// A reference to an object of type `object` (reads as `("customer", to("customer"))`).
pub const fn to(object: &'static str) -> Expansion {
    Expansion::Reference { to: object }
}

impl Expansion {
    /// Fields shown only when a path asks for them.
    pub fn is_hidden(&self) -> bool {
        matches!(self, Expansion::Hidden | Expansion::Children { .. })
    }

    /// The object type this field's objects are, where it names one.
    pub fn target(&self) -> Option<&'static str> {
        match *self {
            Expansion::Reference { to } => Some(to),
            Expansion::Embedded { of } => Some(of),
            Expansion::Related { object, .. } | Expansion::Children { object, .. } => Some(object),
            Expansion::Hidden => None,
        }
    }
}

/// A field of a fixture object that must name another fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixtureLink {
    /// The field, dotted for nested ones (`invoice_settings.default_payment_method`).
    pub field: &'static str,
    /// The type of the object it names.
    pub object: &'static str,
    /// Whether the field may be null (or absent).
    pub optional: bool,
    /// The named object's field that must name this object back, and what
    /// it means when it does not (a default price belongs to its product, a
    /// default payment method is attached to its customer).
    pub back: Option<(&'static str, &'static str)>,
}

/// Everything stripe-twin knows about one object type.
#[derive(Debug, Clone, Copy)]
pub struct ObjectSpec {
    /// Stripe's `object` value (`checkout.session`).
    pub object: &'static str,
    /// Generated ids are `{id_prefix}_` and `id_length` random characters.
    pub id_prefix: &'static str,
    pub id_length: usize,
    /// Callers may choose ids of their own (products), so ids need not
    /// carry the prefix.
    pub custom_ids: bool,
    /// How Stripe names the type in "No such ..." messages.
    pub display_name: &'static str,
    /// How Stripe's other messages name it (`SetupIntent`).
    pub title: &'static str,
    /// Fields `expand[]` can reach, as Stripe's `x-expandableFields`
    /// (for nested fields, their dotted paths).
    pub fields: &'static [(&'static str, Expansion)],
    /// Fixtures may create objects of this type; these fields must name
    /// other fixtures.
    pub fixture: Option<&'static [FixtureLink]>,
    /// Where the type is listed (`/v1/customers`), if it has a list of its own.
    pub list_url: Option<&'static str>,
}

impl ObjectSpec {
    /// A type with 24-character ids, named as its `object`, that nothing
    /// expands and fixtures cannot create; the builders below say more.
    pub const fn new(object: &'static str, id_prefix: &'static str) -> Self {
        Self {
            object,
            id_prefix,
            id_length: 24,
            custom_ids: false,
            display_name: object,
            title: object,
            fields: &[],
            fixture: None,
            list_url: None,
        }
    }

    pub const fn id_length(self, id_length: usize) -> Self {
        Self { id_length, ..self }
    }

    pub const fn custom_ids(self) -> Self {
        Self {
            custom_ids: true,
            ..self
        }
    }

    pub const fn display_name(self, display_name: &'static str) -> Self {
        Self {
            display_name,
            ..self
        }
    }

    pub const fn title(self, title: &'static str) -> Self {
        Self { title, ..self }
    }

    pub const fn fields(self, fields: &'static [(&'static str, Expansion)]) -> Self {
        Self { fields, ..self }
    }

    pub const fn fixture(self, links: &'static [FixtureLink]) -> Self {
        Self {
            fixture: Some(links),
            ..self
        }
    }

    pub const fn list_url(self, url: &'static str) -> Self {
        Self {
            list_url: Some(url),
            ..self
        }
    }

    /// A fresh id of this type.
    pub fn new_id(&self) -> String {
        format!(
            "{}_{}",
            self.id_prefix,
            crate::ids::random_base62(self.id_length)
        )
    }

    /// What `expand[]` can do with `path` on this type.
    pub fn expansion(&self, path: &str) -> Option<Expansion> {
        self.fields
            .iter()
            .find(|(field, _)| *field == path)
            .map(|(_, kind)| *kind)
    }

    /// The fields left out unless expanded.
    pub fn hidden_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields
            .iter()
            .filter(|(_, kind)| kind.is_hidden())
            .map(|(field, _)| *field)
    }
}

/// Every object type stripe-twin serves.
#[derive(Debug)]
pub struct Registry {
    specs: &'static [&'static ObjectSpec],
}

impl Registry {
    pub const fn new(specs: &'static [&'static ObjectSpec]) -> Self {
        Self { specs }
    }

    pub fn specs(&self) -> &'static [&'static ObjectSpec] {
        self.specs
    }

    pub fn get(&self, object: &str) -> Option<&'static ObjectSpec> {
        self.specs
            .iter()
            .copied()
            .find(|spec| spec.object == object)
    }

    /// How Stripe names `object` in "No such ..." messages.
    pub fn display_name<'a>(&self, object: &'a str) -> &'a str {
        self.get(object).map_or(object, |spec| spec.display_name)
    }

    /// How Stripe's messages name `object` in prose (`SetupIntent`).
    pub fn title<'a>(&self, object: &'a str) -> &'a str {
        self.get(object).map_or(object, |spec| spec.title)
    }

    /// The type listed at `url` (`/v1/checkout/sessions`).
    pub fn listed_at(&self, url: &str) -> Option<&'static ObjectSpec> {
        self.specs
            .iter()
            .copied()
            .find(|spec| spec.list_url == Some(url))
    }

    pub fn expansion(&self, object: &str, path: &str) -> Option<Expansion> {
        self.get(object)?.expansion(path)
    }

    /// The types fixtures may create, in registry order.
    pub fn fixture_types(&self) -> impl Iterator<Item = &'static ObjectSpec> + '_ {
        self.specs
            .iter()
            .copied()
            .filter(|spec| spec.fixture.is_some())
    }
}
