//! The route table: routes compiled into per-host tries, and the lookup that
//! applies the precedence rules of DESIGN.md.
//!
//! # Precedence
//!
//! 1. Host tiers, in order: the exact host, then wildcard suffixes longest
//!    first, then routes with no host. **A tier in which nothing matches falls
//!    through to the next**, so a host-less `Prefix("/")` catch-all (the legacy
//!    monolith) still catches `api.example.com/unknown` when `api.example.com`
//!    has routes of its own.
//! 2. Within a tier: the exact path, then templates (literal segments beat
//!    parameters, compared from the left, backtracking when a literal branch
//!    fails; a parameter beats a catch-all), then the longest prefix.
//! 3. Among routes with the same host and path, those with more predicates
//!    first (a method list counts as one, each header predicate as one), then
//!    the order they were added in. A route whose predicates fail is skipped
//!    and the next candidate in this order is tried.
//! 4. Two routes with the same host, path and number of predicates that one
//!    request could satisfy are a [`BuildError::Conflict`].
//!
//! # Cost
//!
//! A lookup is a hash probe per host tier (one per label for wildcards), one
//! hash probe for exact paths, a walk of the segment trie (binary search among
//! literal siblings) and of the prefix radix trie: it depends on the path and
//! the host, not on the number of routes. It does not allocate unless the host
//! has uppercase letters or a template captures more than four parameters.

use std::cmp::Reverse;

use http::Method;

use crate::predicate::HeaderLookup;

use crate::hash::FastMap;
use crate::host::{normalize_host, wildcard_suffixes};
use crate::normalize::normalize_path;
use crate::params::{Captures, Params};
use crate::predicate::{headers_compatible, HeaderPredicate, MethodSet};
use crate::prefix::PrefixNode;
use crate::spec::{BuildError, HostMatch, PathMatch, RouteSpec};
use crate::template::{self, SegNode};

/// Collects routes, then compiles them into a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    routes: Vec<(RouteSpec, T)>,
}

impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouterBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Adds a route with its payload; returns its index, used in matches and errors.
    pub fn add(&mut self, spec: RouteSpec, value: T) -> usize {
        self.routes.push((spec, value));
        self.routes.len() - 1
    }

    /// Compiles the routes, or returns every error found (bad paths, hosts and
    /// templates, and conflicts).
    pub fn build(self) -> Result<Router<T>, Vec<BuildError>> {
        let mut router = Router {
            routes: Vec::with_capacity(self.routes.len()),
            exact_hosts: FastMap::default(),
            wildcard_hosts: FastMap::default(),
            wildcard_lens: Vec::new(),
            any_host: PathTable::default(),
        };
        let mut errors = Vec::new();
        for (index, (spec, value)) in self.routes.into_iter().enumerate() {
            let (kind, names) = match router.insert(index, &spec) {
                Ok(compiled) => compiled,
                Err(e) => {
                    errors.push(e);
                    (MatchKind::Exact, Box::default())
                }
            };
            let specificity = usize::from(!spec.methods.is_empty()) + spec.headers.len();
            router.routes.push(Entry {
                value,
                methods: MethodSet::new(&spec.methods),
                headers: spec.headers.into_boxed_slice(),
                names,
                kind,
                specificity,
            });
        }
        let mut conflicts = router.order_candidates();
        conflicts.sort_unstable();
        conflicts.dedup();
        errors.extend(
            conflicts
                .into_iter()
                .map(|(first, second)| BuildError::Conflict { first, second }),
        );
        if errors.is_empty() {
            Ok(router)
        } else {
            Err(errors)
        }
    }
}

/// Which kind of path a route matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// [`PathMatch::Exact`].
    Exact,
    /// [`PathMatch::Template`].
    Template,
    /// [`PathMatch::Prefix`].
    Prefix,
}

/// A successful lookup.
#[derive(Debug)]
pub struct RouteMatch<'r, 'p, T> {
    /// The route's payload.
    pub value: &'r T,
    /// The route's index, as returned by [`RouterBuilder::add`].
    pub index: usize,
    /// Template parameters (empty for exact and prefix routes); values borrow the path.
    pub params: Params<'r, 'p>,
    /// For a prefix route, how many bytes of the path the prefix matched (for a
    /// prefix rewrite); 0 for exact and template routes.
    pub prefix_len: usize,
    /// Which kind of path matched.
    pub kind: MatchKind,
}

/// Compiled routes, immutable and cheap to search.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<Entry<T>>,
    exact_hosts: FastMap<Box<str>, PathTable>,
    /// Keyed by suffix with its leading dot: `.example.com`.
    wildcard_hosts: FastMap<Box<str>, PathTable>,
    /// `wildcard_lens[n]`: some wildcard suffix is `n` bytes long.
    wildcard_lens: Vec<bool>,
    any_host: PathTable,
}

/// A template's parameter names, in template order.
type ParamNames = Box<[Box<str>]>;

#[derive(Debug)]
struct Entry<T> {
    value: T,
    methods: MethodSet,
    headers: Box<[HeaderPredicate]>,
    names: ParamNames,
    kind: MatchKind,
    /// How many predicates: more goes first among routes of equal path.
    specificity: usize,
}

impl<T> Entry<T> {
    fn accepts<H: HeaderLookup + ?Sized>(&self, method: &Method, headers: &H) -> bool {
        self.methods.contains(method) && self.headers.iter().all(|h| h.matches(headers))
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.methods.overlaps(&other.methods) && headers_compatible(&self.headers, &other.headers)
    }
}

impl<T> Router<T> {
    /// Finds the route for a request, by the precedence in the module docs.
    ///
    /// `host` is the raw Host header or `:authority` (port, trailing dot and case
    /// are handled here); `path` must already be normalized ([`crate::normalize_path`]).
    pub fn find<'r, 'p, H: HeaderLookup + ?Sized>(
        &'r self,
        host: &str,
        path: &'p str,
        method: &Method,
        headers: &H,
    ) -> Option<RouteMatch<'r, 'p, T>> {
        let host = normalize_host(host);
        let mut pick = |list: &[usize]| {
            list.iter().copied().find(|&i| {
                self.routes
                    .get(i)
                    .is_some_and(|r| r.accepts(method, headers))
            })
        };
        let mut hit = self
            .exact_hosts
            .get(&*host)
            .and_then(|table| table.find(path, &mut pick));
        if hit.is_none() && !self.wildcard_hosts.is_empty() {
            // Hash only suffixes as long as some configured one: a host of many
            // labels must not cost a probe per label.
            hit = wildcard_suffixes(&host, self.wildcard_lens.len().saturating_sub(1))
                .filter(|suffix| {
                    self.wildcard_lens
                        .get(suffix.len())
                        .is_some_and(|&known| known)
                })
                .filter_map(|suffix| self.wildcard_hosts.get(suffix))
                .find_map(|table| table.find(path, &mut pick));
        }
        let hit = match hit {
            Some(hit) => hit,
            None => self.any_host.find(path, &mut pick)?,
        };
        let entry = self.routes.get(hit.index)?;
        Some(RouteMatch {
            value: &entry.value,
            index: hit.index,
            params: Params::from_captures(&entry.names, &hit.captures),
            prefix_len: hit.prefix_len,
            kind: entry.kind,
        })
    }

    /// The payload of the route with this index.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.routes.get(index).map(|r| &r.value)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Puts one route into its host's table; returns its kind and parameter names.
    fn insert(
        &mut self,
        index: usize,
        spec: &RouteSpec,
    ) -> Result<(MatchKind, ParamNames), BuildError> {
        let bad_host = |reason: &str| BuildError::BadHost {
            index,
            reason: reason.to_owned(),
        };
        let table = match &spec.host {
            HostMatch::Any => &mut self.any_host,
            HostMatch::Exact(host) => {
                let host = normalize_host(host);
                if host.is_empty() || host.contains(['*', '/']) {
                    return Err(bad_host(
                        "an exact host is a non-empty name without '*' or '/'",
                    ));
                }
                self.exact_hosts.entry(host.into()).or_default()
            }
            HostMatch::Wildcard(suffix) => {
                let suffix = suffix.strip_prefix('*').unwrap_or(suffix);
                let suffix = suffix
                    .strip_suffix('.')
                    .unwrap_or(suffix)
                    .to_ascii_lowercase();
                if !suffix.starts_with('.') || suffix.len() < 2 || suffix.contains(['*', '/', ':'])
                {
                    return Err(bad_host(
                        "a wildcard is a suffix like '.example.com' or '*.example.com'",
                    ));
                }
                if self.wildcard_lens.len() <= suffix.len() {
                    self.wildcard_lens.resize(suffix.len() + 1, false);
                }
                if let Some(known) = self.wildcard_lens.get_mut(suffix.len()) {
                    *known = true;
                }
                self.wildcard_hosts.entry(suffix.into()).or_default()
            }
        };
        match &spec.path {
            PathMatch::Exact(path) => {
                check_normalized(path).map_err(|reason| BuildError::BadPath { index, reason })?;
                table
                    .exact
                    .entry(path.as_str().into())
                    .or_default()
                    .push(index);
                Ok((MatchKind::Exact, Box::default()))
            }
            PathMatch::Prefix(path) => {
                check_normalized(path).map_err(|reason| BuildError::BadPath { index, reason })?;
                table.prefixes.insert(path.as_bytes(), index);
                table.has_prefixes = true;
                Ok((MatchKind::Prefix, Box::default()))
            }
            PathMatch::Template(text) => {
                let bad = |reason| BuildError::BadTemplate { index, reason };
                let parsed = template::parse(text).map_err(bad)?;
                check_normalized(text).map_err(bad)?;
                table.templates.insert(&parsed.segs, index);
                table.has_templates = true;
                Ok((MatchKind::Template, parsed.names.into_boxed_slice()))
            }
        }
    }

    /// Orders every candidate list by precedence and returns the conflicting pairs.
    fn order_candidates(&mut self) -> Vec<(usize, usize)> {
        let routes = &self.routes;
        let mut conflicts = Vec::new();
        let mut order = |list: &mut Vec<usize>| {
            let specificity = |i: usize| routes.get(i).map_or(0, |r| r.specificity);
            list.sort_by_key(|&i| (Reverse(specificity(i)), i));
            for (n, &a) in list.iter().enumerate() {
                for &b in list.iter().skip(n + 1) {
                    let (Some(ra), Some(rb)) = (routes.get(a), routes.get(b)) else {
                        continue;
                    };
                    if ra.specificity == rb.specificity && ra.overlaps(rb) {
                        conflicts.push((a.min(b), a.max(b)));
                    }
                }
            }
        };
        let tables = self
            .exact_hosts
            .values_mut()
            .chain(self.wildcard_hosts.values_mut())
            .chain(std::iter::once(&mut self.any_host));
        for table in tables {
            table.for_each_list_mut(&mut order);
        }
        conflicts
    }
}

/// A route path must be in the form request paths are normalized to, or it
/// could never match.
fn check_normalized(path: &str) -> Result<(), String> {
    match normalize_path(path) {
        Ok(n) if n.path == path => Ok(()),
        Ok(n) => Err(format!("{path:?} is not normalized; write {:?}", n.path)),
        Err(e) => Err(format!("{path:?}: {e}")),
    }
}

/// The routes of one host tier entry.
#[derive(Debug, Default)]
struct PathTable {
    exact: FastMap<Box<str>, Vec<usize>>,
    templates: SegNode,
    prefixes: PrefixNode,
    has_templates: bool,
    has_prefixes: bool,
}

/// A path-level hit, before the route's parameter names are attached.
struct Hit<'p> {
    index: usize,
    captures: Captures<'p>,
    prefix_len: usize,
}

impl PathTable {
    fn find<'p>(
        &self,
        path: &'p str,
        pick: &mut impl FnMut(&[usize]) -> Option<usize>,
    ) -> Option<Hit<'p>> {
        let mut captures = Captures::new();
        if let Some(index) = self.exact.get(path).and_then(|list| pick(list)) {
            return Some(Hit {
                index,
                captures,
                prefix_len: 0,
            });
        }
        if self.has_templates {
            if let Some(index) = self
                .templates
                .find(path.strip_prefix('/'), &mut captures, pick)
            {
                return Some(Hit {
                    index,
                    captures,
                    prefix_len: 0,
                });
            }
        }
        if self.has_prefixes {
            if let Some((index, prefix_len)) = self.prefixes.find(path.as_bytes(), 0, pick) {
                return Some(Hit {
                    index,
                    captures,
                    prefix_len,
                });
            }
        }
        None
    }

    fn for_each_list_mut(&mut self, f: &mut impl FnMut(&mut Vec<usize>)) {
        self.exact.values_mut().for_each(&mut *f);
        self.templates.for_each_list_mut(f);
        self.prefixes.for_each_list_mut(f);
    }
}

#[cfg(test)]
mod tests;
