//! Where each value of a YAML file sits: a map from config path to line and column.
//!
//! serde gives a position only for the first type error; the checks after layering (duplicate
//! hosts, cycles, unknown references) need the position of any value, so we index the file once
//! with yaml-rust2's marked events.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::{Path, Seg};

/// 1-based line and column of a value.
pub(crate) type Pos = (usize, usize);

/// Positions of the keys and values of one file.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    /// Where each path's key is written (`host:`).
    pub keys: HashMap<Path, Pos>,
    /// Where each path's value starts.
    pub values: HashMap<Path, Pos>,
}

impl SpanIndex {
    /// The key's position when the path is a mapping entry, otherwise the value's.
    pub fn get(&self, path: &Path) -> Option<Pos> {
        self.keys.get(path).or_else(|| self.values.get(path)).copied()
    }
}

enum Frame {
    Mapping { key: Option<String> },
    Sequence { index: usize },
}

struct Indexer {
    frames: Vec<Frame>,
    path: Path,
    spans: SpanIndex,
}

impl Indexer {
    fn pos(mark: Marker) -> Pos {
        // yaml-rust2 markers are 1-based in lines and 0-based in columns.
        (mark.line(), mark.col() + 1)
    }

    /// Called at the start of a node; returns true when the node is a mapping key.
    fn begin_node(&mut self, mark: Marker, scalar: Option<&str>) -> bool {
        match self.frames.last_mut() {
            Some(Frame::Mapping { key }) if key.is_none() => {
                let Some(text) = scalar else { return true };
                *key = Some(text.to_owned());
                self.path.push(Seg::Key(text.to_owned()));
                self.spans.keys.insert(self.path.clone(), Self::pos(mark));
                true
            }
            Some(Frame::Sequence { index }) => {
                self.path.push(Seg::Index(*index));
                self.spans.values.insert(self.path.clone(), Self::pos(mark));
                false
            }
            Some(Frame::Mapping { .. }) => {
                self.spans.values.insert(self.path.clone(), Self::pos(mark));
                false
            }
            None => false,
        }
    }

    /// A scalar or an alias: a value is complete where it begins; a key waits for its value.
    fn leaf(&mut self, mark: Marker, text: Option<&str>) {
        if !self.begin_node(mark, text) {
            self.end_value();
        }
    }

    /// Called when a value node is complete.
    fn end_value(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Mapping { key }) => {
                *key = None;
                self.path.pop();
            }
            Some(Frame::Sequence { index }) => {
                *index += 1;
                self.path.pop();
            }
            None => {}
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => self.leaf(mark, Some(&text)),
            Event::Alias(..) => self.leaf(mark, None),
            Event::MappingStart(..) => {
                self.begin_node(mark, None);
                self.frames.push(Frame::Mapping { key: None });
            }
            Event::SequenceStart(..) => {
                self.begin_node(mark, None);
                self.frames.push(Frame::Sequence { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.end_value();
            }
            _ => {}
        }
    }
}

/// Indexes `text`; a syntax error ends the index early (serde reports it with its position).
pub(crate) fn index(text: &str) -> SpanIndex {
    let mut indexer = Indexer { frames: Vec::new(), path: Path::default(), spans: SpanIndex::default() };
    let _ = Parser::new_from_str(text).load(&mut indexer, false);
    indexer.spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_keys_and_sequence_items() {
        let text = "name: demo\nservices:\n  api:\n    depends_on:\n      - postgres\n      - redis\n";
        let spans = index(text);
        let at = |p: &str| spans.get(&Path::parse(p).unwrap());
        assert_eq!(at("name"), Some((1, 1)));
        assert_eq!(at("services.api"), Some((3, 3)));
        assert_eq!(at("services.api.depends_on"), Some((4, 5)));
        assert_eq!(at("services.api.depends_on[1]"), Some((6, 9)));
    }
}
