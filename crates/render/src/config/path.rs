//! Config paths (`services.api.depends_on[0]`): how diagnostics and `--set` name a value.

use std::fmt;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the root of the config to one value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// A path of mapping keys.
    pub fn keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self(keys.into_iter().map(|k| Seg::Key(k.to_owned())).collect())
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_owned()));
        p
    }

    /// This path extended by an index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    pub(crate) fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    /// Whether `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }

    /// Parses `a.b[0].c`; `None` when empty or malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let mut segs = Vec::new();
        for part in text.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && (segs.is_empty() || rest.is_empty()) {
                return None;
            }
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_owned()));
            }
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']')?;
                segs.push(Seg::Index(stripped[..end].parse().ok()?));
                rest = &stripped[end + 1..];
            }
            if !rest.is_empty() {
                return None;
            }
        }
        (!segs.is_empty()).then_some(Self(segs))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl From<&serde_path_to_error::Path> for Path {
    fn from(p: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        Self(
            p.iter()
                .filter_map(|s| match s {
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
                    Segment::Unknown => None,
                })
                .collect(),
        )
    }
}
