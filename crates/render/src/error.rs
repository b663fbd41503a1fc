//! The render crate's error type and the diagnostics that config errors carry.

use std::fmt;
use std::path::PathBuf;

/// A result whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a config or rendering it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config (after layering) is invalid; every problem found is listed, with where it is.
    #[error("{0}")]
    Config(Diagnostics),
    /// A config or input file could not be read.
    #[error("reading {path}")]
    ReadInput {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template (embedded or from `--templates`) could not be parsed.
    #[error("template {name} does not parse")]
    Template {
        /// Template name, relative to the templates folder.
        name: String,
        /// The parser's message.
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    /// A file of the templates folder replaces no embedded template.
    #[error("{} replaces no template: {}", path.display(), match closest {
        Some(closest) => format!("did you mean {closest}?"),
        None => format!("the templates are {}", known.join(", ")),
    })]
    UnknownTemplate {
        /// The file.
        path: PathBuf,
        /// Its name relative to the templates folder.
        name: String,
        /// The embedded template whose name is closest, when one is close.
        closest: Option<String>,
        /// Every embedded template's name.
        known: Vec<String>,
    },
    /// The templates folder holds no template.
    #[error("{} holds no template (no `<component>/<file>.hbs` file)", dir.display())]
    NoTemplates {
        /// The folder.
        dir: PathBuf,
    },
    /// A template failed while rendering (a missing variable in strict mode, a helper error).
    #[error("rendering template {name} for {component}")]
    RenderTemplate {
        /// Template name.
        name: String,
        /// The component being rendered.
        component: String,
        /// The renderer's message.
        #[source]
        source: Box<handlebars::RenderError>,
    },
    /// A template produced output that is not valid YAML; a template bug, not a config bug.
    #[error("template {name} produced invalid YAML for {component}; fix the template")]
    RenderedYaml {
        /// Template name.
        name: String,
        /// The component being rendered.
        component: String,
        /// The YAML parser's message.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A secret that the config needs is missing from the secrets passed to render.
    #[error("secret {name} is missing from the environment's secrets")]
    MissingSecret {
        /// The secret's name.
        name: String,
    },
    /// The local CA or a certificate could not be generated.
    #[error("generating the local certificate authority")]
    Certificate(#[source] rcgen::Error),
    /// The realm export cannot take the login probe's test user.
    #[error("the realm export cannot take keycloak.login's test user: {reason}")]
    Realm {
        /// Why.
        reason: String,
    },
    /// The stored secrets file does not parse, or holds a certificate or key that is not one.
    /// The message never holds what the file holds (it has the CA's private key).
    #[error(
        "the stored secrets are invalid at {at}: {problem}; delete the file to regenerate them (the local CA changes)"
    )]
    SecretsFormat {
        /// Where: the keys leading to the value, and its line and column when known.
        at: String,
        /// What is wrong, without the value.
        problem: String,
    },
}

/// Where a value sits in a file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file, as the user named it (relative to where they ran the tool when possible).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in the config: what is wrong, where, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the value came from: a file position, an environment variable, a flag.
    pub origin: Option<String>,
    /// The config path (`services.api.ingress.host`), when the problem belongs to one.
    pub path: Option<String>,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// What to do instead.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message only; origin, path and help are added by the builders.
    pub fn new(message: impl Into<String>) -> Self {
        Self { origin: None, path: None, message: message.into(), help: None }
    }

    /// Sets the config path the problem belongs to.
    #[must_use]
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets where the offending value came from.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Sets the suggested fix.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// All problems found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid config: {one}"),
            many => {
                write!(f, "invalid config: {} problems", many.len())?;
                for d in many {
                    write!(f, "\n  {}", d.to_string().replace('\n', "\n  "))?;
                }
                Ok(())
            }
        }
    }
}

/// The closest candidate to `input`, when one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
