//! Method and header predicates: evaluated on the request, and compared with
//! each other to find conflicting routes at build time.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// Where a request's headers can be looked up: an `http::HeaderMap`, or a parsed
/// HTTP/1.1 head that was never turned into one (the gateway's fast path).
pub trait HeaderLookup {
    /// The first value of the header `name` (lowercase, as `HeaderName` holds it),
    /// matched case-insensitively.
    fn first_value(&self, name: &HeaderName) -> Option<&[u8]>;
}

impl HeaderLookup for HeaderMap {
    fn first_value(&self, name: &HeaderName) -> Option<&[u8]> {
        self.get(name).map(HeaderValue::as_bytes)
    }
}

/// A header a route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPredicate {
    /// The header's name.
    pub name: HeaderName,
    /// `Some(v)`: the header's first value equals `v` byte for byte;
    /// `None`: the header is present, whatever its value.
    pub value: Option<HeaderValue>,
}

impl HeaderPredicate {
    /// Does the request's header map satisfy this predicate?
    ///
    /// A value is compared with the header's *first* value only, so two routes
    /// asking for different values of one header can never both match.
    pub fn matches<H: HeaderLookup + ?Sized>(&self, headers: &H) -> bool {
        match (&self.value, headers.first_value(&self.name)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(got)) => want.as_bytes() == got,
        }
    }

    /// Could one request satisfy both predicates?
    fn compatible(&self, other: &Self) -> bool {
        match (&self.value, &other.value) {
            (Some(a), Some(b)) if self.name == other.name => a == b,
            _ => true,
        }
    }
}

/// Could one request satisfy both lists of header predicates?
pub(crate) fn headers_compatible(a: &[HeaderPredicate], b: &[HeaderPredicate]) -> bool {
    a.iter().all(|pa| b.iter().all(|pb| pa.compatible(pb)))
}

/// A route's allowed methods: a bitset for the standard ones, a list for the rest.
/// Empty means any method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MethodSet {
    bits: u16,
    extensions: Box<[Method]>,
}

impl MethodSet {
    pub(crate) fn new(methods: &[Method]) -> Self {
        let mut bits = 0;
        let mut extensions = Vec::new();
        for m in methods {
            match standard_bit(m) {
                Some(bit) => bits |= bit,
                None if !extensions.contains(m) => extensions.push(m.clone()),
                None => {}
            }
        }
        Self {
            bits,
            extensions: extensions.into_boxed_slice(),
        }
    }

    /// No method constraint at all.
    pub(crate) fn is_any(&self) -> bool {
        self.bits == 0 && self.extensions.is_empty()
    }

    pub(crate) fn contains(&self, method: &Method) -> bool {
        if self.is_any() {
            return true;
        }
        match standard_bit(method) {
            Some(bit) => self.bits & bit != 0,
            None => self.extensions.contains(method),
        }
    }

    /// Is there a method both sets allow? (Empty allows all.)
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        self.is_any()
            || other.is_any()
            || self.bits & other.bits != 0
            || self.extensions.iter().any(|m| other.extensions.contains(m))
    }
}

fn standard_bit(method: &Method) -> Option<u16> {
    let bit = match method.as_str() {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "CONNECT" => 5,
        "OPTIONS" => 6,
        "TRACE" => 7,
        "PATCH" => 8,
        _ => return None,
    };
    Some(1 << bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn method_sets() {
        let any = MethodSet::new(&[]);
        let get = MethodSet::new(&[Method::GET]);
        let post_purge = MethodSet::new(&[Method::POST, ext("PURGE")]);
        assert!(any.contains(&ext("ANYTHING")));
        assert!(get.contains(&Method::GET) && !get.contains(&Method::HEAD));
        assert!(post_purge.contains(&ext("PURGE")) && !post_purge.contains(&ext("BAN")));
        assert!(any.overlaps(&get) && get.overlaps(&any));
        assert!(!get.overlaps(&post_purge));
        assert!(MethodSet::new(&[ext("PURGE")]).overlaps(&post_purge));
        assert!(!MethodSet::new(&[ext("BAN")]).overlaps(&post_purge));
    }

    #[test]
    fn header_predicates() {
        let name = HeaderName::from_static("x-canary");
        let present = HeaderPredicate {
            name: name.clone(),
            value: None,
        };
        let one = HeaderPredicate {
            name: name.clone(),
            value: Some(HeaderValue::from_static("1")),
        };
        let two = HeaderPredicate {
            name,
            value: Some(HeaderValue::from_static("2")),
        };
        let other = HeaderPredicate {
            name: HeaderName::from_static("x-other"),
            value: Some(HeaderValue::from_static("2")),
        };
        let mut headers = HeaderMap::new();
        assert!(!present.matches(&headers));
        headers.append("x-canary", HeaderValue::from_static("1"));
        headers.append("x-canary", HeaderValue::from_static("2"));
        assert!(present.matches(&headers) && one.matches(&headers));
        assert!(!two.matches(&headers), "only the first value counts");
        assert!(headers_compatible(&[present], std::slice::from_ref(&one)));
        assert!(!headers_compatible(
            std::slice::from_ref(&one),
            std::slice::from_ref(&two)
        ));
        assert!(headers_compatible(&[one], &[other]));
        assert!(headers_compatible(&[], &[two]));
    }
}
