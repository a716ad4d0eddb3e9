//! `Problem`: one thing wrong with a file Tessera loads (a provider file, the SDL), with where
//! it is. `tessera check` prints each as `file: location: message`, where the location is a
//! JSON pointer for JSON files and `line:column` for SDL.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// A JSON pointer (`/resources/contacts/fields/firstName`) or `line:column`.
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn new(
        file: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.into(),
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = if self.location.is_empty() {
            "/"
        } else {
            &self.location
        };
        write!(f, "{}: {}: {}", self.file.display(), location, self.message)
    }
}

/// Every problem found, in file order. Loading never stops at the first problem: a user
/// fixing a provider file wants the whole list at once.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
