//! Path templates (`/v1/items/{id}`, `/static/{*file}`) and the segment trie
//! they are matched with.
//!
//! The trie is walked depth first, at each segment trying the literal child,
//! then the parameter child, then a catch-all: so literal segments beat
//! parameters compared from the left, and a failed literal branch backtracks.

use crate::params::Captures;

/// One segment of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    /// Matches exactly this text (may be empty: a trailing slash).
    Literal(&'a str),
    /// `{name}`: one non-empty segment.
    Param,
    /// `{name...}` or `{*name}`: the rest of the path, possibly empty; last only.
    CatchAll,
}

/// A template split into segments, with its parameter names in order.
#[derive(Debug)]
pub(crate) struct Template<'a> {
    pub(crate) segs: Vec<Seg<'a>>,
    pub(crate) names: Vec<Box<str>>,
}

/// Parses a template; the error says why it is refused.
pub(crate) fn parse(template: &str) -> Result<Template<'_>, String> {
    let rest = template
        .strip_prefix('/')
        .ok_or_else(|| "must start with '/'".to_owned())?;
    let mut segs = Vec::new();
    let mut names: Vec<Box<str>> = Vec::new();
    let mut pieces = rest.split('/').peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        if piece.is_empty() && !last {
            return Err("empty segment ('//')".to_owned());
        }
        if !piece.contains(['{', '}']) {
            segs.push(Seg::Literal(piece));
            continue;
        }
        let inner = piece
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .ok_or_else(|| format!("parameter must be a whole segment: {piece:?}"))?;
        let (name, seg) = if let Some(name) = inner.strip_prefix('*') {
            (name, Seg::CatchAll)
        } else if let Some(name) = inner.strip_suffix("...") {
            (name, Seg::CatchAll)
        } else {
            (inner, Seg::Param)
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "bad parameter name {name:?} (letters, digits, '_')"
            ));
        }
        if seg == Seg::CatchAll && !last {
            return Err(format!("catch-all {piece:?} must be the last segment"));
        }
        if names.iter().any(|n| **n == *name) {
            return Err(format!("parameter {name:?} appears twice"));
        }
        names.push(name.into());
        segs.push(seg);
    }
    Ok(Template { segs, names })
}

/// A node of the segment trie. Route indices in each list are in precedence order.
#[derive(Debug, Default)]
pub(crate) struct SegNode {
    /// Literal children, sorted by segment text for binary search.
    statics: Vec<(Box<str>, SegNode)>,
    param: Option<Box<SegNode>>,
    /// Routes whose template ends at this node.
    leaf: Vec<usize>,
    /// Routes whose template ends with a catch-all after this node.
    catch_all: Vec<usize>,
}

impl SegNode {
    pub(crate) fn insert(&mut self, segs: &[Seg<'_>], index: usize) {
        let Some((first, rest)) = segs.split_first() else {
            self.leaf.push(index);
            return;
        };
        let child = match *first {
            Seg::CatchAll => {
                self.catch_all.push(index);
                return;
            }
            Seg::Param => self.param.get_or_insert_with(Box::default),
            Seg::Literal(text) => {
                let pos = match self.statics.binary_search_by(|(k, _)| (**k).cmp(text)) {
                    Ok(pos) => pos,
                    Err(pos) => {
                        self.statics.insert(pos, (text.into(), SegNode::default()));
                        pos
                    }
                };
                match self.statics.get_mut(pos) {
                    Some((_, node)) => node,
                    None => return, // unreachable: `pos` was just found or inserted
                }
            }
        };
        child.insert(rest, index);
    }

    /// Finds the first route, by precedence, whose template matches and which
    /// `pick` accepts. `rest` is the path after the `/` that precedes the next
    /// segment (`None` once the path is used up). On a hit, `caps` holds the
    /// captured values in template order.
    pub(crate) fn find<'p>(
        &self,
        rest: Option<&'p str>,
        caps: &mut Captures<'p>,
        pick: &mut impl FnMut(&[usize]) -> Option<usize>,
    ) -> Option<usize> {
        let Some(rest) = rest else {
            return pick(&self.leaf);
        };
        let (seg, next) = match rest.split_once('/') {
            Some((seg, next)) => (seg, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = self.static_child(seg) {
            if let Some(hit) = child.find(next, caps, pick) {
                return Some(hit);
            }
        }
        if let Some(child) = self.param.as_deref().filter(|_| !seg.is_empty()) {
            caps.push(seg);
            if let Some(hit) = child.find(next, caps, pick) {
                return Some(hit);
            }
            caps.pop();
        }
        if !self.catch_all.is_empty() {
            caps.push(rest);
            if let Some(hit) = pick(&self.catch_all) {
                return Some(hit);
            }
            caps.pop();
        }
        None
    }

    fn static_child(&self, seg: &str) -> Option<&SegNode> {
        let pos = self
            .statics
            .binary_search_by(|(k, _)| (**k).cmp(seg))
            .ok()?;
        self.statics.get(pos).map(|(_, node)| node)
    }

    /// Calls `f` on every non-empty route list (to order them and find conflicts).
    pub(crate) fn for_each_list_mut(&mut self, f: &mut impl FnMut(&mut Vec<usize>)) {
        for list in [&mut self.leaf, &mut self.catch_all] {
            if !list.is_empty() {
                f(list);
            }
        }
        if let Some(param) = &mut self.param {
            param.for_each_list_mut(f);
        }
        for (_, child) in &mut self.statics {
            child.for_each_list_mut(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_templates() {
        let t = parse("/v1/items/{id}/parts/{part}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.segs,
            [
                Seg::Literal("v1"),
                Seg::Literal("items"),
                Seg::Param,
                Seg::Literal("parts"),
                Seg::Param
            ]
        );
        assert_eq!(t.names, ["id".into(), "part".into()] as [Box<str>; 2]);
        let t = parse("/static/{rest...}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.segs, [Seg::Literal("static"), Seg::CatchAll]);
        let t = parse("/static/{*rest}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.segs, [Seg::Literal("static"), Seg::CatchAll]);
        let t = parse("/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.segs, [Seg::Literal("")]);
        let t = parse("/a/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.segs, [Seg::Literal("a"), Seg::Literal("")]);
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "v1/{id}",
            "/v1//{id}",
            "/v1/{id}.json",
            "/v1/{}",
            "/v1/{a-b}",
            "/v1/{*rest}/more",
            "/v1/{id}/{id}",
            "/v1/{id",
            "/v1/id}",
            "/v1/{*}",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }
}
