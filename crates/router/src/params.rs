//! Captured template parameters, kept inline so a match does not allocate.

/// How many items an [`InlineList`] holds before it spills to the heap.
const INLINE: usize = 4;

/// A list that keeps its first [`INLINE`] items in place and spills the rest to
/// a `Vec` (which allocates only when used).
#[derive(Debug, Clone)]
pub(crate) struct InlineList<X> {
    inline: [X; INLINE],
    len: usize,
    spill: Vec<X>,
}

impl<X: Copy + Default> InlineList<X> {
    pub(crate) fn new() -> Self {
        Self {
            inline: [X::default(); INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, item: X) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = item,
            None => self.spill.push(item),
        }
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) {
        if self.len > INLINE {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = X> + '_ {
        self.inline
            .iter()
            .take(self.len)
            .chain(&self.spill)
            .copied()
    }
}

/// Parameter values captured from a path while walking the template trie, in
/// template order. Names are attached once the route is known.
pub(crate) type Captures<'p> = InlineList<&'p str>;

/// A matched template's parameters: `(name, value)` pairs in template order.
///
/// Names borrow the router (`'r`), values borrow the request path (`'p`); up to
/// four pairs are stored inline, so matching allocates nothing in the usual case.
/// A catch-all's value is the rest of the path without its leading `/` (it may be
/// empty, e.g. `/static/` against `/static/{*file}`).
#[derive(Clone)]
pub struct Params<'r, 'p> {
    pairs: InlineList<(&'r str, &'p str)>,
}

impl<'r, 'p> Params<'r, 'p> {
    pub(crate) fn new() -> Self {
        Self {
            pairs: InlineList::new(),
        }
    }

    pub(crate) fn from_captures(names: &'r [Box<str>], values: &Captures<'p>) -> Self {
        let mut pairs = InlineList::new();
        for (name, value) in names.iter().zip(values.iter()) {
            pairs.push((&**name, value));
        }
        Self { pairs }
    }

    /// The value of the parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The `(name, value)` pairs in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&'r str, &'p str)> + '_ {
        self.pairs.iter()
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when the route captured no parameter.
    pub fn is_empty(&self) -> bool {
        self.pairs.len() == 0
    }
}

impl std::fmt::Debug for Params<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Default for Params<'_, '_> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_past_inline_capacity_and_pops_back() {
        let mut list = InlineList::<u32>::new();
        for i in 0..7 {
            list.push(i);
        }
        assert_eq!(list.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 6]);
        for _ in 0..5 {
            list.pop();
        }
        assert_eq!(list.iter().collect::<Vec<_>>(), [0, 1]);
        list.pop();
        list.pop();
        list.pop();
        assert_eq!(list.len(), 0);
        list.push(9);
        assert_eq!(list.iter().collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn params_zip_names_and_values() {
        let names: Vec<Box<str>> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(Into::into)
            .collect();
        let mut caps = Captures::new();
        for v in ["1", "2", "3", "4", "5"] {
            caps.push(v);
        }
        let p = Params::from_captures(&names, &caps);
        assert_eq!(p.len(), 5);
        assert_eq!(p.get("e"), Some("5"));
        assert_eq!(p.get("z"), None);
        assert!(Params::default().is_empty());
        let two = Params::from_captures(names.get(..2).unwrap_or_default(), &caps);
        assert_eq!(format!("{two:?}"), r#"{"a": "1", "b": "2"}"#);
    }
}
