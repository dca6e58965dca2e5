//! The shape of one row of the REST table ([`super::routes::ROUTES`]): a route described as data.
//! Rows are `const`, built with the small builder below, and checked against the schema by
//! [`super::compile`] at start-up.

/// The HTTP methods a row can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// Where a GraphQL variable's value comes from. Its REST name is the variable's name in
/// snake_case (`$pageSize` → `page_size`, `$orgId` → `org_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `{name}` segment of the path.
    Path,
    /// The query string; a list variable takes every repetition of the key
    /// (`?severity=high&severity=critical`).
    Query,
    /// The whole JSON body is this variable (an input object; snake_case keys).
    Body,
    /// One field of the JSON body.
    BodyField,
    /// One field of the JSON body or, when the body lacks it, this cookie.
    BodyFieldOrCookie(&'static str),
}

/// One variable of a row's operation and where it comes from.
#[derive(Clone, Copy, Debug)]
pub struct Var {
    /// The GraphQL variable name, without `$`.
    pub name: &'static str,
    pub source: Source,
}

impl Var {
    pub const fn path(name: &'static str) -> Self {
        Self {
            name,
            source: Source::Path,
        }
    }
    pub const fn query(name: &'static str) -> Self {
        Self {
            name,
            source: Source::Query,
        }
    }
    pub const fn body(name: &'static str) -> Self {
        Self {
            name,
            source: Source::Body,
        }
    }
    pub const fn field(name: &'static str) -> Self {
        Self {
            name,
            source: Source::BodyField,
        }
    }
    pub const fn field_or_cookie(name: &'static str, cookie: &'static str) -> Self {
        Self {
            name,
            source: Source::BodyFieldOrCookie(cookie),
        }
    }
}

/// How the root field's value is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// `{"data": value}`; a value that is a plain list stays a list (no `meta`).
    Data,
    /// The value itself, unwrapped (for compatibility aliases whose clients expect it).
    Bare,
    /// A connection as `{"data": [node...], "meta": {...}, "links": {...}}`.
    Page,
    /// An object of connections paged together (the same `page` and `page_size`) as
    /// `{"data": {key: [node...]}, "meta": {key: {...}}, "links": {...}}`, the links reaching
    /// as far as the longest list.
    Pages,
    /// No body (204).
    Empty,
}

/// Who may call a route; documentation only, the resolvers enforce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential needed.
    Public,
    /// A session or an API key.
    Any,
    /// A signed-in session only; API keys get 403 `SESSION_REQUIRED`.
    Session,
}

/// One REST route: everything needed to serve and document it.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: Method,
    /// With `{name}` segments for path variables.
    pub path: &'static str,
    /// One named GraphQL operation selecting one root field; aliases are the REST field names.
    pub operation: &'static str,
    pub vars: &'static [Var],
    /// 200, 201, 202 or 204.
    pub status: u16,
    pub envelope: Envelope,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Extra words for the OpenAPI description (the root field's own description comes first).
    pub notes: &'static str,
    /// Whether a success sets (or clears) the session cookies; documentation only, the
    /// resolvers set them.
    pub sets_cookies: bool,
}

impl Route {
    const fn new(
        method: Method,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
        operation: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            operation,
            vars: &[],
            status: 200,
            envelope: Envelope::Data,
            access: Access::Any,
            summary,
            tag,
            notes: "",
            sets_cookies: false,
        }
    }
    pub const fn get(p: &'static str, t: &'static str, s: &'static str, o: &'static str) -> Self {
        Self::new(Method::Get, p, t, s, o)
    }
    pub const fn post(p: &'static str, t: &'static str, s: &'static str, o: &'static str) -> Self {
        Self::new(Method::Post, p, t, s, o)
    }
    pub const fn patch(p: &'static str, t: &'static str, s: &'static str, o: &'static str) -> Self {
        Self::new(Method::Patch, p, t, s, o)
    }
    pub const fn put(p: &'static str, t: &'static str, s: &'static str, o: &'static str) -> Self {
        Self::new(Method::Put, p, t, s, o)
    }
    /// A delete answers 204 unless told otherwise.
    pub const fn delete(
        p: &'static str,
        t: &'static str,
        s: &'static str,
        o: &'static str,
    ) -> Self {
        Self::new(Method::Delete, p, t, s, o).empty()
    }
    pub const fn vars(mut self, vars: &'static [Var]) -> Self {
        self.vars = vars;
        self
    }
    /// 201 with `{data}`.
    pub const fn created(mut self) -> Self {
        self.status = 201;
        self
    }
    /// 202 with `{data}`: the work continues after the answer.
    pub const fn accepted(mut self) -> Self {
        self.status = 202;
        self
    }
    /// 204 without a body.
    pub const fn empty(mut self) -> Self {
        self.status = 204;
        self.envelope = Envelope::Empty;
        self
    }
    /// A connection, paged with `page` and `page_size`.
    pub const fn page(mut self) -> Self {
        self.envelope = Envelope::Page;
        self
    }
    /// An object of connections, paged together with `page` and `page_size`.
    pub const fn pages(mut self) -> Self {
        self.envelope = Envelope::Pages;
        self
    }
    /// The value without the `{data}` wrapper.
    pub const fn bare(mut self) -> Self {
        self.envelope = Envelope::Bare;
        self
    }
    pub const fn public(mut self) -> Self {
        self.access = Access::Public;
        self
    }
    pub const fn session(mut self) -> Self {
        self.access = Access::Session;
        self
    }
    /// A success sets or clears the session cookies (`Set-Cookie`).
    pub const fn sets_cookies(mut self) -> Self {
        self.sets_cookies = true;
        self
    }
    pub const fn notes(mut self, notes: &'static str) -> Self {
        self.notes = notes;
        self
    }
}
