//! Labelled data of a downstream task: GLUE's TSV layouts (SST-2, CoLA, MRPC, STS-B, RTE, QNLI)
//! or any TSV whose text and label columns the user names, read into examples of one text or a
//! pair with a class or a score.

use std::path::Path;

use crate::error::{CompressError, Result};

/// A column of a TSV file: by 0-based index, or by name in the header line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl std::str::FromStr for Column {
    type Err = std::convert::Infallible;
    /// A number is an index, anything else a header name.
    fn from_str(s: &str) -> std::result::Result<Column, Self::Err> {
        Ok(match s.trim().parse::<usize>() {
            Ok(i) => Column::Index(i),
            Err(_) => Column::Name(s.trim().to_string()),
        })
    }
}

/// What a task predicts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Labels {
    /// Class names in logit order. A label cell holds a name, or its index in this list.
    Classes(Vec<String>),
    /// One score per example (a one-output regression head, as STS-B).
    Regression,
    /// The classes are the distinct values of the training file's label column, sorted
    /// (numerically when all are numbers); [`TaskSpec::resolve_labels`] reads them.
    FromData,
}

/// Where a task's texts and labels are in its TSV files.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    /// `sst2`, `cola`, `mrpc`, `stsb`, `rte`, `qnli`, or `custom`.
    pub name: String,
    pub text: Column,
    /// The second text of a pair task.
    pub text_pair: Option<Column>,
    pub label: Column,
    /// Whether the first line names the columns (and is not an example).
    pub header: bool,
    pub labels: Labels,
    /// The files' layout: TSV of texts, or sentences of tagged words (`text` is the words'
    /// column, `label` their tags' column).
    #[serde(default)]
    pub format: DataFormat,
}

/// How a task's files hold its examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// One example per line, tab-separated columns.
    #[default]
    Tsv,
    /// CoNLL-U sentences (`upos`, `xpos`): one word per line, a tag per word.
    Conllu,
    /// Two-column CoNLL files (word, then tag in the last column), BIO or BIOES tags scored by
    /// entity-level F1.
    Conll,
}

/// An example's gold answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Class(usize),
    Score(f32),
}

/// One labelled example: a text or a pair.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskExample {
    pub a: String,
    pub b: Option<String>,
    pub target: Target,
}

/// The GLUE tasks [`TaskSpec::glue`] knows.
pub const GLUE_TASKS: [&str; 6] = ["sst2", "cola", "mrpc", "stsb", "rte", "qnli"];

fn names(v: &[&str]) -> Labels {
    Labels::Classes(v.iter().map(|s| s.to_string()).collect())
}

impl TaskSpec {
    /// A GLUE task's layout, as in the GLUE distribution's `train.tsv` and `dev.tsv` (label
    /// names as the Hugging Face GLUE datasets call them).
    pub fn glue(task: &str) -> Result<TaskSpec> {
        let i = Column::Index;
        let (text, pair, label, header, labels) = match task {
            "sst2" => (i(0), None, i(1), true, names(&["negative", "positive"])),
            "cola" => (i(3), None, i(1), false, names(&["unacceptable", "acceptable"])),
            "mrpc" => (i(3), Some(i(4)), i(0), true, names(&["not_equivalent", "equivalent"])),
            "stsb" => (i(7), Some(i(8)), i(9), true, Labels::Regression),
            "rte" | "qnli" => {
                (i(1), Some(i(2)), i(3), true, names(&["entailment", "not_entailment"]))
            }
            other => {
                return Err(CompressError::InvalidArgument(format!(
                    "unknown task `{other}`: use one of {} (or name the columns of your own TSV)",
                    GLUE_TASKS.join(", ")
                )))
            }
        };
        Ok(TaskSpec {
            name: task.to_string(),
            text,
            text_pair: pair,
            label,
            header,
            labels,
            format: DataFormat::Tsv,
        })
    }

    /// A tagging task of CoNLL-U files: `upos` (the 17 universal tags, in UD's order) or `xpos`
    /// (the treebank's own tags, [`Labels::FromData`]).
    pub fn tagging(task: &str) -> Result<TaskSpec> {
        let (label, labels) = match task {
            "upos" => (crate::tagging::conllu::UPOS, names(&crate::tagging::UPOS_TAGS)),
            "xpos" => (crate::tagging::conllu::XPOS, Labels::FromData),
            other => {
                return Err(CompressError::InvalidArgument(format!(
                    "unknown tagging task `{other}`: use upos or xpos"
                )))
            }
        };
        Ok(TaskSpec {
            name: task.to_string(),
            text: Column::Index(crate::tagging::conllu::FORM),
            text_pair: None,
            label: Column::Index(label),
            header: false,
            labels,
            format: DataFormat::Conllu,
        })
    }

    /// A tagging task of the user's two-column CoNLL files (`conll`): tags read from the data
    /// (sorted), scored by entity-level F1.
    pub fn conll() -> TaskSpec {
        TaskSpec {
            name: "conll".to_string(),
            text: Column::Index(0),
            text_pair: None,
            label: Column::Index(1),
            header: false,
            labels: Labels::FromData,
            format: DataFormat::Conll,
        }
    }

    /// Whether the examples are tagged words (a token head's task).
    pub fn is_tagging(&self) -> bool {
        self.format != DataFormat::Tsv
    }

    pub fn is_regression(&self) -> bool {
        self.labels == Labels::Regression
    }

    /// The class names (empty for regression), once resolved.
    pub fn class_names(&self) -> &[String] {
        match &self.labels {
            Labels::Classes(v) => v,
            _ => &[],
        }
    }

    /// The head's outputs: one per class, or one score.
    pub fn outputs(&self) -> usize {
        match &self.labels {
            Labels::Classes(v) => v.len(),
            _ => 1,
        }
    }

    /// Turns [`Labels::FromData`] into the classes found in `train` (a TSV of this layout).
    pub fn resolve_labels(&mut self, train: &Path) -> Result<()> {
        if self.labels != Labels::FromData {
            return Ok(());
        }
        let rows = read_rows(train)?;
        let (start, label) = self.columns_of(train, &rows, &self.label)?;
        let mut values: Vec<String> = Vec::new();
        for (n, row) in rows.iter().enumerate().skip(start) {
            if row.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let v = row.get(label).map(|c| c.trim().to_string()).ok_or_else(|| {
                bad_line(train, n, format!("it has no column {label} (the label column)"))
            })?;
            if !values.contains(&v) {
                values.push(v);
            }
        }
        if values.len() < 2 {
            return Err(CompressError::TaskData {
                path: train.to_path_buf(),
                line: 0,
                what: format!(
                    "the label column holds {} distinct value(s); a classifier needs at least 2 \
                     (for scores, ask for a regression head)",
                    values.len()
                ),
            });
        }
        if values.iter().all(|v| v.parse::<f64>().is_ok()) {
            values.sort_by(|a, b| {
                a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse().unwrap_or(0.0))
            });
        } else {
            values.sort();
        }
        self.labels = Labels::Classes(values);
        Ok(())
    }

    /// The header's length and a column's index.
    fn columns_of(&self, path: &Path, rows: &[Vec<String>], c: &Column) -> Result<(usize, usize)> {
        let start = usize::from(self.header);
        let index = match c {
            Column::Index(i) => *i,
            Column::Name(name) => {
                let head = rows.first().filter(|_| self.header).ok_or_else(|| {
                    bad_line(
                        path,
                        0,
                        format!("column `{name}` is named, but the file has no header line"),
                    )
                })?;
                head.iter().position(|h| h.trim() == name).ok_or_else(|| {
                    bad_line(
                        path,
                        0,
                        format!("no column `{name}` in the header ({})", head.join(", ")),
                    )
                })?
            }
        };
        Ok((start, index))
    }

    /// The examples of a TSV file of this layout (blank lines skipped).
    pub fn read(&self, path: &Path) -> Result<Vec<TaskExample>> {
        if self.labels == Labels::FromData {
            return Err(CompressError::InvalidArgument(
                "the task's labels are not known yet: resolve them from the training file first"
                    .into(),
            ));
        }
        let rows = read_rows(path)?;
        let (start, a) = self.columns_of(path, &rows, &self.text)?;
        let b = self
            .text_pair
            .as_ref()
            .map(|c| self.columns_of(path, &rows, c))
            .transpose()?
            .map(|x| x.1);
        let (_, label) = self.columns_of(path, &rows, &self.label)?;
        let mut out = Vec::new();
        for (n, row) in rows.iter().enumerate().skip(start) {
            if row.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let cell = |i: usize, what: &str| {
                row.get(i).ok_or_else(|| {
                    bad_line(
                        path,
                        n,
                        format!("it has {} columns, and the {what} is column {i}", row.len()),
                    )
                })
            };
            let text_a = cell(a, "text")?.clone();
            let text_b = b.map(|i| cell(i, "second text").cloned()).transpose()?;
            let value = cell(label, "label")?.trim();
            let target = match &self.labels {
                Labels::Regression => Target::Score(value.parse::<f32>().map_err(|_| {
                    bad_line(path, n, format!("the score `{value}` is not a number"))
                })?),
                Labels::Classes(names) => {
                    Target::Class(class_of(names, value).ok_or_else(|| {
                        bad_line(
                            path,
                            n,
                            format!(
                                "the label `{value}` is none of {} (nor their index)",
                                names.join(", ")
                            ),
                        )
                    })?)
                }
                Labels::FromData => unreachable!("checked above"),
            };
            out.push(TaskExample { a: text_a, b: text_b, target });
        }
        if out.is_empty() {
            return Err(CompressError::TaskData {
                path: path.to_path_buf(),
                line: 0,
                what: "it holds no examples".into(),
            });
        }
        Ok(out)
    }
}

/// A label cell's class: its name, or its index — unless the names are numbers themselves,
/// where an index would be read as another class.
fn class_of(names: &[String], value: &str) -> Option<usize> {
    let by_name = names.iter().position(|n| n == value);
    if by_name.is_some() || names.iter().any(|n| n.parse::<f64>().is_ok()) {
        return by_name;
    }
    value.parse::<usize>().ok().filter(|&i| i < names.len())
}

fn bad_line(path: &Path, line: usize, what: String) -> CompressError {
    CompressError::TaskData { path: path.to_path_buf(), line: line + 1, what }
}

/// Tab-separated rows of a file (a byte-order mark dropped; no quoting, as GLUE's files).
pub fn read_rows(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|source| CompressError::Io {
        what: "cannot read the task data",
        path: path.into(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').split('\t').map(str::to_string).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn file(text: &str) -> ((), Scratch) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("bertling-task-{}-{n}.tsv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ((), Scratch(path))
    }

    #[test]
    fn glue_layouts_read_as_the_glue_files_are_written() {
        let (_d, p) = file("sentence\tlabel\na fine film \t1\nawful\t0\n\n");
        let ex = TaskSpec::glue("sst2").unwrap().read(&p).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!((ex[0].a.as_str(), ex[0].target), ("a fine film ", Target::Class(1)));
        let (_d, p) = file("gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tRode the.\n");
        let ex = TaskSpec::glue("cola").unwrap().read(&p).unwrap();
        assert_eq!(
            ex.iter().map(|e| e.target).collect::<Vec<_>>(),
            [Target::Class(1), Target::Class(0)]
        );
        let (_d, p) =
            file("\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t7\t8\tA b.\tB a.\n");
        let ex = TaskSpec::glue("mrpc").unwrap().read(&p).unwrap();
        assert_eq!((ex[0].a.as_str(), ex[0].b.as_deref()), ("A b.", Some("B a.")));
        let (_d, p) =
            file("index\tq\ts\tlabel\n0\tWho?\tHim.\tnot_entailment\n1\tX\tY\tentailment\n");
        let ex = TaskSpec::glue("qnli").unwrap().read(&p).unwrap();
        assert_eq!(
            ex.iter().map(|e| e.target).collect::<Vec<_>>(),
            [Target::Class(1), Target::Class(0)]
        );
        let head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
        let (_d, p) = file(&format!("{head}0\tg\tf\ty\t0\tn\tn\tA man.\tA person.\t4.750\n"));
        let ex = TaskSpec::glue("stsb").unwrap().read(&p).unwrap();
        assert_eq!(ex[0].target, Target::Score(4.75));
        assert!(TaskSpec::glue("stsb").unwrap().is_regression());
        let err = TaskSpec::glue("mnli").unwrap_err().to_string();
        assert!(err.contains("sst2, cola, mrpc, stsb, rte, qnli"), "{err}");
    }

    #[test]
    fn custom_columns_by_name_or_index_and_labels_from_the_data() {
        let (_d, p) = file("id\tlabel\ttext\n1\tspam\tbuy now\n2\tham\tsee you\n3\tspam\tfree\n");
        let mut spec = TaskSpec {
            name: "custom".into(),
            text: "text".parse().unwrap(),
            text_pair: None,
            label: "1".parse().unwrap(),
            header: true,
            labels: Labels::FromData,
            format: DataFormat::Tsv,
        };
        assert!(spec.read(&p).is_err(), "labels must be resolved first");
        spec.resolve_labels(&p).unwrap();
        assert_eq!(spec.class_names(), ["ham", "spam"]);
        let ex = spec.read(&p).unwrap();
        assert_eq!((ex[0].a.as_str(), ex[0].target), ("buy now", Target::Class(1)));
        // An index is accepted for a named class.
        let (_d, i) = file("id\tlabel\ttext\n1\t0\tsee you\n");
        assert_eq!(spec.read(&i).unwrap()[0].target, Target::Class(0));
        // Numbers sort as numbers; where the classes are numbers, a cell is never an index.
        let (_d, q) = file("10\ta\n9\tb\n10\tc\n");
        let mut num = TaskSpec {
            header: false,
            text: Column::Index(1),
            label: Column::Index(0),
            ..spec.clone()
        };
        num.labels = Labels::FromData;
        num.resolve_labels(&q).unwrap();
        assert_eq!(num.class_names(), ["9", "10"]);
        assert_eq!(num.read(&q).unwrap()[1].target, Target::Class(0));
        let (_d, z) = file("0\ta\n");
        let err = num.read(&z).unwrap_err().to_string();
        assert!(err.contains("`0` is none of 9, 10"), "{err}");
        // Errors name the file, the line and what to do.
        let missing = TaskSpec { text: "body".parse().unwrap(), ..spec.clone() };
        let err = missing.read(&p).unwrap_err().to_string();
        assert!(err.contains("no column `body`") && err.contains("id, label, text"), "{err}");
        let (_d, r) = file("id\tlabel\ttext\n1\teggs\tx\n");
        let err = spec.read(&r).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("`eggs` is none of ham, spam"), "{err}");
        let (_d, s) = file("id\tlabel\ttext\n1\tspam\n");
        let err = spec.read(&s).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("has 2 columns"), "{err}");
        let (_d, t) = file("id\tlabel\ttext\n1\tspam\tx\n");
        let mut one = TaskSpec { labels: Labels::FromData, ..spec.clone() };
        let err = one.resolve_labels(&t).unwrap_err().to_string();
        assert!(err.contains("1 distinct value"), "{err}");
    }
}
