//! Longest-prefix matching over plain byte-string prefixes: a compressed radix
//! trie whose children are found by binary search on their first byte.

/// A node of the prefix trie. Route indices in `routes` are in precedence order.
#[derive(Debug, Default)]
pub(crate) struct PrefixNode {
    /// The bytes this edge adds to the parent's prefix (empty only at the root).
    label: Box<[u8]>,
    /// Routes whose prefix ends exactly here.
    routes: Vec<usize>,
    /// Children, sorted by the first byte of their (non-empty) label.
    children: Vec<PrefixNode>,
}

impl PrefixNode {
    /// Adds a route for the prefix `key` (relative to this node).
    pub(crate) fn insert(&mut self, key: &[u8], index: usize) {
        let Some(&first) = key.first() else {
            self.routes.push(index);
            return;
        };
        match self.child_pos(first) {
            Ok(pos) => {
                let Some(child) = self.children.get_mut(pos) else {
                    return; // unreachable: `pos` was just found
                };
                let common = common_len(&child.label, key);
                if common < child.label.len() {
                    child.split(common);
                }
                child.insert(key.get(common..).unwrap_or_default(), index);
            }
            Err(pos) => self.children.insert(
                pos,
                PrefixNode {
                    label: key.into(),
                    routes: vec![index],
                    children: Vec::new(),
                },
            ),
        }
    }

    /// Splits this node's label at `at`: the node keeps the head, a new child
    /// takes the tail with the old routes and children.
    fn split(&mut self, at: usize) {
        let (head, tail) = self
            .label
            .split_at_checked(at)
            .unwrap_or((&self.label, &[]));
        let (head, tail): (Box<[u8]>, Box<[u8]>) = (head.into(), tail.into());
        let tail_node = PrefixNode {
            label: tail,
            routes: std::mem::take(&mut self.routes),
            children: std::mem::take(&mut self.children),
        };
        self.label = head;
        self.children = vec![tail_node];
    }

    fn child_pos(&self, first: u8) -> Result<usize, usize> {
        self.children
            .binary_search_by_key(&Some(first), |c| c.label.first().copied())
    }

    /// Finds the longest prefix of `rest` (the path after this node's prefix,
    /// which is `depth` bytes long) whose routes `pick` accepts, falling back to
    /// shorter prefixes. Returns the route and the prefix length in bytes.
    pub(crate) fn find(
        &self,
        rest: &[u8],
        depth: usize,
        pick: &mut impl FnMut(&[usize]) -> Option<usize>,
    ) -> Option<(usize, usize)> {
        let child = rest
            .first()
            .and_then(|&b| self.child_pos(b).ok())
            .and_then(|pos| self.children.get(pos));
        if let Some(child) = child {
            if let Some(after) = rest.strip_prefix(&*child.label) {
                if let Some(hit) = child.find(after, depth + child.label.len(), pick) {
                    return Some(hit);
                }
            }
        }
        pick(&self.routes).map(|index| (index, depth))
    }

    /// Calls `f` on every non-empty route list (to order them and find conflicts).
    pub(crate) fn for_each_list_mut(&mut self, f: &mut impl FnMut(&mut Vec<usize>)) {
        if !self.routes.is_empty() {
            f(&mut self.routes);
        }
        for child in &mut self.children {
            child.for_each_list_mut(f);
        }
    }
}

fn common_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(prefixes: &[&str]) -> PrefixNode {
        let mut root = PrefixNode::default();
        for (i, p) in prefixes.iter().enumerate() {
            root.insert(p.as_bytes(), i);
        }
        root
    }

    fn longest(root: &PrefixNode, path: &str) -> Option<(usize, usize)> {
        root.find(path.as_bytes(), 0, &mut |routes| routes.first().copied())
    }

    #[test]
    fn longest_prefix_wins_and_splits_work() {
        let root = trie(&[
            "/",
            "/v1/items",
            "/v1/items/",
            "/v1/i",
            "/v2",
            "/v1/orders/",
        ]);
        assert_eq!(longest(&root, "/v1/items/42"), Some((2, 10)));
        assert_eq!(longest(&root, "/v1/items"), Some((1, 9)));
        assert_eq!(longest(&root, "/v1/itemsX"), Some((1, 9)));
        assert_eq!(longest(&root, "/v1/ix"), Some((3, 5)));
        assert_eq!(longest(&root, "/v1/orders"), Some((0, 1)));
        assert_eq!(longest(&root, "/v1/orders/1"), Some((5, 11)));
        assert_eq!(longest(&root, "/v2/x"), Some((4, 3)));
        assert_eq!(longest(&root, "/"), Some((0, 1)));
        assert_eq!(longest(&trie(&["/a"]), "/b"), None);
        assert_eq!(longest(&trie(&[]), "/b"), None);
    }

    #[test]
    fn falls_back_to_shorter_prefix_when_refused() {
        let root = trie(&["/", "/v1/", "/v1/items/"]);
        // Refuse route 2: the next longest prefix is tried.
        let hit = root.find(b"/v1/items/1", 0, &mut |routes| {
            routes.iter().copied().find(|&r| r != 2)
        });
        assert_eq!(hit, Some((1, 4)));
    }
}
