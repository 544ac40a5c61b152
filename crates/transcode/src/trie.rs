//! A trie over path segments: lookup cost depends on the path's length, not on how
//! many methods are mapped.

use std::collections::HashMap;

use http::Method;

use crate::template::{Segment, Template};

/// Paths with more segments than this are split into a heap buffer (rare).
const STACK_SEGMENTS: usize = 24;

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<Box<str>, Node>,
    single: Option<Box<Node>>,
    /// Templates ending here.
    leaves: Vec<Leaf>,
    /// Templates whose `**` starts here (zero or more further segments).
    multi: Vec<Leaf>,
}

#[derive(Debug)]
struct Leaf {
    /// `None` for `custom { kind: "*" }`: any HTTP method.
    method: Option<Method>,
    verb: Option<Box<str>>,
    id: usize,
}

/// Maps (HTTP method, path) to the id of a binding.
#[derive(Debug, Default)]
pub(crate) struct Trie {
    root: Node,
}

impl Trie {
    /// Adds a template; on a duplicate (same method, template shape and verb)
    /// returns the id already there.
    pub(crate) fn insert(
        &mut self,
        t: &Template,
        method: Option<Method>,
        id: usize,
    ) -> Result<(), usize> {
        let mut node = &mut self.root;
        let mut multi = false;
        for seg in &t.segments {
            node = match seg {
                Segment::Literal(l) => node.literals.entry(l.clone()).or_default(),
                Segment::Single => node.single.get_or_insert_with(Box::default),
                Segment::Multi => {
                    multi = true;
                    break;
                }
            };
        }
        let leaves = if multi {
            &mut node.multi
        } else {
            &mut node.leaves
        };
        if let Some(dup) = leaves
            .iter()
            .find(|l| l.method == method && l.verb == t.verb)
        {
            return Err(dup.id);
        }
        leaves.push(Leaf {
            method,
            verb: t.verb.clone(),
            id,
        });
        Ok(())
    }

    /// Finds the binding for a request path (already normalized, without the query).
    /// Literal segments win over `*`, which wins over `**`.
    pub(crate) fn find<'p>(
        &self,
        method: &Method,
        path: &'p str,
    ) -> Option<(usize, Option<&'p str>)> {
        let rest = path.strip_prefix('/')?;
        if rest.is_empty() {
            return self.find_in(method, &mut []);
        }
        if rest.split('/').count() > STACK_SEGMENTS {
            let mut heap: Vec<&'p str> = rest.split('/').collect();
            return self.find_in(method, &mut heap);
        }
        let mut stack: [&'p str; STACK_SEGMENTS] = [""; STACK_SEGMENTS];
        let mut n = 0;
        for (slot, s) in stack.iter_mut().zip(rest.split('/')) {
            *slot = s;
            n += 1;
        }
        self.find_in(method, &mut stack[..n])
    }

    fn find_in<'p>(
        &self,
        method: &Method,
        segs: &mut [&'p str],
    ) -> Option<(usize, Option<&'p str>)> {
        // A custom verb rides on the last segment: try it first, then the plain path.
        if let Some(last) = segs.last().copied() {
            if let Some((head, verb)) = last.rsplit_once(':') {
                let n = segs.len();
                segs[n - 1] = head;
                let found = walk(&self.root, segs, method, Some(verb));
                segs[n - 1] = last;
                if let Some(id) = found {
                    return Some((id, Some(verb)));
                }
            }
        }
        walk(&self.root, segs, method, None).map(|id| (id, None))
    }
}

fn pick(leaves: &[Leaf], method: &Method, verb: Option<&str>) -> Option<usize> {
    let mut any = None;
    for l in leaves {
        if l.verb.as_deref() != verb {
            continue;
        }
        match &l.method {
            Some(m) if m == method => return Some(l.id),
            None => any = any.or(Some(l.id)),
            Some(_) => {}
        }
    }
    any
}

fn walk(node: &Node, segs: &[&str], method: &Method, verb: Option<&str>) -> Option<usize> {
    let Some((first, rest)) = segs.split_first() else {
        return pick(&node.leaves, method, verb).or_else(|| pick(&node.multi, method, verb));
    };
    if let Some(child) = node.literals.get(*first) {
        if let Some(id) = walk(child, rest, method, verb) {
            return Some(id);
        }
    }
    if let Some(child) = &node.single {
        if !first.is_empty() {
            if let Some(id) = walk(child, rest, method, verb) {
                return Some(id);
            }
        }
    }
    pick(&node.multi, method, verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(rules: &[(&str, Option<Method>)]) -> Trie {
        let mut t = Trie::default();
        for (i, (tpl, m)) in rules.iter().enumerate() {
            t.insert(&Template::parse(tpl).unwrap(), m.clone(), i)
                .unwrap();
        }
        t
    }

    #[test]
    fn literal_beats_variable_beats_multi() {
        let t = trie(&[
            ("/v1/books/{id}", Some(Method::GET)),
            ("/v1/books/special", Some(Method::GET)),
            ("/v1/{path=**}", Some(Method::GET)),
            ("/v1/books/{id}:publish", Some(Method::POST)),
            ("/v1/any/{x}", None),
        ]);
        assert_eq!(t.find(&Method::GET, "/v1/books/1"), Some((0, None)));
        assert_eq!(t.find(&Method::GET, "/v1/books/special"), Some((1, None)));
        assert_eq!(t.find(&Method::GET, "/v1/a/b/c"), Some((2, None)));
        assert_eq!(t.find(&Method::GET, "/v1"), Some((2, None)));
        assert_eq!(
            t.find(&Method::POST, "/v1/books/1:publish"),
            Some((3, Some("publish")))
        );
        assert_eq!(t.find(&Method::POST, "/v1/books/1"), None);
        assert_eq!(t.find(&Method::GET, "/v1/books/"), Some((2, None)));
        assert_eq!(t.find(&Method::PATCH, "/v1/any/z"), Some((4, None)));
        assert_eq!(t.find(&Method::GET, "v1/books/1"), None);
    }

    #[test]
    fn duplicates_are_reported() {
        let mut t = trie(&[("/v1/{a}", Some(Method::GET))]);
        let dup = Template::parse("/v1/{b}").unwrap();
        assert_eq!(t.insert(&dup, Some(Method::GET), 9), Err(0));
        assert_eq!(t.insert(&dup, Some(Method::PUT), 9), Ok(()));
    }

    #[test]
    fn long_paths_use_the_heap() {
        let t = trie(&[("/a/{p=**}", Some(Method::GET))]);
        let long = format!("/a{}", "/x".repeat(100));
        assert_eq!(t.find(&Method::GET, &long), Some((0, None)));
    }
}
