//! Field checks of the `training` service. Bad fields are collected in a
//! [`Fields`](crate::common::validate::Fields) so one answer lists them all; a bad item of a
//! list is reported under the list's name with its index in the message.

use crate::common::validate::Fields;
use crate::todos::validate as text;

use super::messages::{CourseInput, NewAssessment};

/// Longest lesson content, in characters.
pub const CONTENT_MAX: usize = 100_000;
/// Most lessons in a course.
pub const LESSONS_MAX: usize = 200;
/// Most questions in an assessment.
pub const QUESTIONS_MAX: usize = 200;
/// Most choices of a question.
pub const CHOICES_MAX: usize = 20;
/// Pass mark when none is given, in percent.
pub const PASS_MARK_DEFAULT: i64 = 70;
/// Attempts when none are given.
pub const MAX_ATTEMPTS_DEFAULT: i64 = 3;
/// Most attempts an assessment may allow.
pub const MAX_ATTEMPTS_MAX: i64 = 100;

fn required(fields: &mut Fields, name: &'static str, v: Option<&String>) {
    match v {
        Some(t) => fields.check(name, text::title(t)),
        None => fields.check(name, Err("is required".into())),
    }
}

/// Checks a course as written, recording each bad field in `fields`.
pub fn course(c: &CourseInput, fields: &mut Fields) {
    required(fields, "title", c.title.as_ref());
    if let Some(d) = &c.description {
        fields.check("description", text::description(d));
    }
    if let Some(p) = c.pass_mark {
        if !(0..=100).contains(&p) {
            fields.check("pass_mark", Err("must be a percent, 0 to 100".into()));
        }
    }
    if !c.lessons_given {
        fields.check("lessons", Err("is required".into()));
    } else if c.lessons.is_empty() || c.lessons.len() > LESSONS_MAX {
        fields.check(
            "lessons",
            Err(format!("must list 1 to {LESSONS_MAX} lessons")),
        );
    } else {
        for (i, l) in c.lessons.iter().enumerate() {
            let title = match &l.title {
                None => Err("is required".to_string()),
                Some(t) => text::title(t),
            };
            let problem = match (title, &l.content) {
                (Err(e), _) => Some(format!("title {e}")),
                (_, Some(c)) if c.chars().count() > CONTENT_MAX => {
                    Some(format!("content must be at most {CONTENT_MAX} characters"))
                }
                _ => None,
            };
            if let Some(p) = problem {
                fields.check("lessons", Err(format!("lesson {i}: {p}")));
                break;
            }
        }
    }
}

/// Checks an assessment as written, recording each bad field in `fields`.
pub fn assessment(a: &NewAssessment, fields: &mut Fields) {
    required(fields, "title", a.title.as_ref());
    if let Some(m) = a.max_attempts {
        if !(1..=MAX_ATTEMPTS_MAX).contains(&m) {
            fields.check(
                "max_attempts",
                Err(format!("must be 1 to {MAX_ATTEMPTS_MAX}")),
            );
        }
    }
    if !a.questions_given {
        fields.check("questions", Err("is required".into()));
        return;
    }
    if a.questions.is_empty() || a.questions.len() > QUESTIONS_MAX {
        fields.check(
            "questions",
            Err(format!("must list 1 to {QUESTIONS_MAX} questions")),
        );
        return;
    }
    for (i, q) in a.questions.iter().enumerate() {
        let n = q.choices.len();
        let problem = match (&q.text, q.answer) {
            (None, _) => Some("text is required".to_string()),
            (Some(t), _) if text::title(t).is_err() => {
                Some("text must be 1 to 200 characters, not blank".to_string())
            }
            _ if !(2..=CHOICES_MAX).contains(&n) => {
                Some(format!("choices must list 2 to {CHOICES_MAX} choices"))
            }
            _ if q.choices.iter().any(|c| text::title(c).is_err()) => {
                Some("every choice must be 1 to 200 characters, not blank".to_string())
            }
            (_, None) => Some("answer is required".to_string()),
            (_, Some(a)) if a < 0 || a >= n as i64 => {
                Some(format!("answer must be a choice index, 0 to {}", n - 1))
            }
            _ => None,
        };
        if let Some(p) = problem {
            fields.check("questions", Err(format!("question {i}: {p}")));
            break;
        }
    }
}
