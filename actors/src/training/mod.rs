//! The `training` service: courses with ordered lessons, enrolment and per-lesson progress,
//! assessments scored on submit, and certificates issued once.
//!
//! # Ops
//! | op | kind | request | reply |
//! |---|---|---|---|
//! | `create_course` | effectful | [`CourseInput`] | [`Course`] |
//! | `update_course` | effectful | [`UpdateCourse`] | [`Course`] |
//! | `get_course` | idempotent | [`CourseRef`] | [`Course`] |
//! | `list_courses` | idempotent | [`ListCourses`] | [`CoursePage`] |
//! | `delete_course` | effectful | [`CourseRef`] | [`Course`] (as it was) |
//! | `enroll` | effectful | [`CourseRef`] | [`Enrolment`] |
//! | `progress` | idempotent | [`ProgressQuery`] | [`Enrolments`] |
//! | `mark_lesson` | effectful | [`MarkLesson`] | [`Enrolment`] |
//! | `list_assessments` | idempotent | [`CourseRef`] | [`Assessments`] |
//! | `create_assessment` | effectful | [`NewAssessment`] | [`Assessment`] |
//! | `submit` | effectful | [`Submit`] | [`Scored`] |
//! | `list_certificates` | idempotent | [`ListCertificates`] | [`Certificates`] |
//! | `get_certificate` | idempotent | [`CertificateRef`] | [`Certificate`] |
//!
//! Every op needs a caller. Courses and assessments are written by admins only
//! (`permission_denied` for anyone else); everyone signed in reads them, but only admins
//! are told the answers. Progress, attempts and certificates are the caller's own; another
//! user's certificate is `not_found` (an admin sees every one).
//!
//! A certificate is issued when every lesson of the course is completed and every
//! assessment of it (at least one) has a passing attempt, whichever comes last: the last
//! lesson marked or the passing submit. The store makes it happen once: a certificate is
//! unique per (user, course), and the check and the insert run in the transaction that
//! records the lesson or the attempt (which first locks the learner's enrolment row), so
//! two passing submits racing on two nodes give one certificate (both answer its id) and
//! one `training.certificate_issued` event. Attempts
//! are numbered in the store, unique per (assessment, user), so racing submits cannot
//! exceed `max_attempts`; one past the limit is `failed_precondition` (HTTP 409).
//!
//! Events: `training.enrolled`, `training.lesson_completed`, `training.certificate_issued`,
//! each about the learner.
//!
//! # Layout
//! - this file: the [`Service`] impl, one method per op;
//! - [`messages`]: the prost messages;
//! - [`store`]: all SQL;
//! - [`validate`]: field checks.

pub mod messages;
pub mod store;
pub mod validate;

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use messages::*;

use self::store::{AssessmentRow, AttemptRow, CertificateRow, CourseRow, LessonRow, Recorded};
use crate::common::{self, validate::Fields, Who};
use crate::events::{kinds, NewEvent, Publisher, Staged};
use crate::mesh::{BoxFuture, Code, MeshError, Request, Service};
use crate::store::time::{now_ms, rfc3339_millis};
use crate::store::Store;
use ops::Cmd;

/// Service name.
pub const NAME: &str = "training";

/// The ops of `training`, declared once.
pub mod ops {
    use super::messages::*;

    crate::ops! {
        /// An op of `training`, decoded at the service's edge.
        pub enum Cmd for super::NAME {
            /// Create a course with its lessons (admin).
            CreateCourse = CREATE_COURSE("create_course", effectful): CourseInput => Course,
            /// Replace a course's fields and lessons (admin).
            UpdateCourse = UPDATE_COURSE("update_course", effectful): UpdateCourse => Course,
            /// One course with its lessons.
            GetCourse = GET_COURSE("get_course", idempotent): CourseRef => Course,
            /// A page of courses.
            ListCourses = LIST_COURSES("list_courses", idempotent): ListCourses => CoursePage,
            /// Delete a course (admin); answers it as it was.
            DeleteCourse = DELETE_COURSE("delete_course", effectful): CourseRef => Course,
            /// Enrol the caller in a course (again: no change).
            Enroll = ENROLL("enroll", effectful): CourseRef => Enrolment,
            /// The caller's enrolments with per-lesson progress.
            Progress = PROGRESS("progress", idempotent): ProgressQuery => Enrolments,
            /// Mark one lesson completed (or not) for the caller.
            MarkLesson = MARK_LESSON("mark_lesson", effectful): MarkLesson => Enrolment,
            /// The assessments of a course (answers for admins only).
            ListAssessments = LIST_ASSESSMENTS("list_assessments", idempotent): CourseRef => Assessments,
            /// Create an assessment of a course (admin).
            CreateAssessment = CREATE_ASSESSMENT("create_assessment", effectful): NewAssessment => Assessment,
            /// Score the caller's answers; may issue the certificate.
            Submit = SUBMIT("submit", effectful): Submit => Scored,
            /// The caller's certificates.
            ListCertificates = LIST_CERTIFICATES("list_certificates", idempotent): ListCertificates => Certificates,
            /// One certificate.
            GetCertificate = GET_CERTIFICATE("get_certificate", idempotent): CertificateRef => Certificate,
        }
    }
}

/// Read-modify-write attempts of a change that keeps losing races.
const ATTEMPTS: usize = 3;

/// A question as stored, answer included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredQuestion {
    text: String,
    choices: Vec<String>,
    answer: u32,
}

/// The service.
pub struct Training {
    store: Store,
    publisher: Publisher,
}

fn admin_only(who: &Who, what: &str) -> Result<(), MeshError> {
    if who.admin {
        Ok(())
    } else {
        Err(MeshError::new(
            Code::PermissionDenied,
            format!("only an admin may {what}"),
        ))
    }
}

/// The "validation failed" error of one bad field, found after the request's own checks
/// (against stored state).
fn field_error(field: &'static str, message: String) -> MeshError {
    let mut fields = Fields::new();
    fields.check(field, Err(message));
    fields
        .finish()
        .err()
        .unwrap_or_else(|| MeshError::invalid(field))
}

fn not_enrolled() -> MeshError {
    MeshError::new(Code::FailedPrecondition, "enroll in the course first")
}

fn course_not_found() -> MeshError {
    MeshError::not_found("course not found")
}

fn lesson_rows(input: &CourseInput, keep: &[LessonRow]) -> Result<Vec<LessonRow>, MeshError> {
    let mut rows = Vec::with_capacity(input.lessons.len());
    let mut seen = std::collections::HashSet::new();
    for (i, l) in input.lessons.iter().enumerate() {
        let id = match &l.id {
            Some(id) if keep.iter().any(|k| &k.id == id) && seen.insert(id.clone()) => id.clone(),
            Some(_) => {
                return Err(field_error(
                    "lessons",
                    format!("lesson {i}: id is not a lesson of this course (or listed twice)"),
                ))
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        rows.push(LessonRow {
            id,
            position: i as i64 + 1,
            title: l.title.clone().unwrap_or_default(),
            content: l.content.clone().unwrap_or_default(),
        });
    }
    Ok(rows)
}

impl Training {
    /// The service over `store`, publishing through `publisher`.
    pub fn new(store: Store, publisher: Publisher) -> Self {
        Self { store, publisher }
    }

    async fn course(&self, id: &str) -> Result<(CourseRow, Vec<LessonRow>), MeshError> {
        common::validate::id("id", id)?;
        store::get_course(&self.store, id)
            .await?
            .ok_or_else(course_not_found)
    }

    /// `create_course` (admin).
    pub async fn create_course(&self, who: &Who, c: CourseInput) -> Result<Course, MeshError> {
        admin_only(who, "create a course")?;
        let mut fields = Fields::new();
        validate::course(&c, &mut fields);
        fields.finish()?;
        // A new course has no lessons to keep: any lesson ids given are not looked at.
        let mut fresh = c.clone();
        fresh.lessons.iter_mut().for_each(|l| l.id = None);
        let lessons = lesson_rows(&fresh, &[])?;
        let now = now_ms();
        let row = CourseRow {
            id: uuid::Uuid::new_v4().to_string(),
            title: c.title.unwrap_or_default(),
            description: c.description.unwrap_or_default(),
            pass_mark: c.pass_mark.unwrap_or(validate::PASS_MARK_DEFAULT),
            created_by: who.user_id.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        store::insert_course(&self.store, &row, &lessons).await?;
        Ok(row.to_course(&lessons))
    }

    /// `update_course` (admin): the course becomes what is given; lessons given with the id
    /// of an existing lesson keep it (and learners' progress on it).
    pub async fn update_course(&self, who: &Who, u: UpdateCourse) -> Result<Course, MeshError> {
        admin_only(who, "change a course")?;
        common::validate::id("id", &u.id)?;
        let c = u.course.unwrap_or_default();
        let mut fields = Fields::new();
        validate::course(&c, &mut fields);
        fields.finish()?;
        for _ in 0..ATTEMPTS {
            let (row, old_lessons) = self.course(&u.id).await?;
            let lessons = lesson_rows(&c, &old_lessons)?;
            let next = CourseRow {
                title: c.title.clone().unwrap_or_default(),
                description: c.description.clone().unwrap_or_default(),
                pass_mark: c.pass_mark.unwrap_or(validate::PASS_MARK_DEFAULT),
                updated_at: now_ms().max(row.updated_at),
                version: row.version + 1,
                ..row.clone()
            };
            if store::replace_course(&self.store, &next, row.version, &lessons).await? {
                return Ok(next.to_course(&lessons));
            }
        }
        Err(MeshError::new(
            Code::FailedPrecondition,
            "the course is being changed concurrently, try again",
        ))
    }

    /// `get_course`.
    pub async fn get_course(&self, r: &CourseRef) -> Result<Course, MeshError> {
        let (row, lessons) = self.course(&r.id).await?;
        Ok(row.to_course(&lessons))
    }

    /// `list_courses`: newest first.
    pub async fn list_courses(&self, l: &ListCourses) -> Result<CoursePage, MeshError> {
        let (page, per_page) = common::validate::page(l.page, l.per_page)?;
        let (limit, offset) = common::validate::limit_offset(page, per_page);
        let (rows, total) = store::list_courses(&self.store, limit, offset).await?;
        Ok(CoursePage {
            items: rows.iter().map(|(c, l)| c.to_course(l)).collect(),
            total: u64::try_from(total).unwrap_or_default(),
            page,
            per_page,
        })
    }

    /// `delete_course` (admin): answers the course as it was.
    pub async fn delete_course(&self, who: &Who, r: &CourseRef) -> Result<Course, MeshError> {
        admin_only(who, "delete a course")?;
        for _ in 0..ATTEMPTS {
            let (row, lessons) = self.course(&r.id).await?;
            if store::delete_course(&self.store, &row.id, row.version).await? {
                return Ok(row.to_course(&lessons));
            }
        }
        Err(MeshError::new(
            Code::FailedPrecondition,
            "the course is being changed concurrently, try again",
        ))
    }

    /// The caller's enrolment in a course with per-lesson progress.
    async fn enrolment(
        &self,
        who: &Who,
        course: &CourseRow,
        lessons: &[LessonRow],
        enrolled_at: i64,
    ) -> Result<Enrolment, MeshError> {
        let done: HashMap<String, i64> = store::completed(&self.store, &who.user_id, &course.id)
            .await?
            .into_iter()
            .collect();
        let lessons: Vec<LessonProgress> = lessons
            .iter()
            .map(|l| LessonProgress {
                lesson_id: l.id.clone(),
                title: l.title.clone(),
                position: u32::try_from(l.position).unwrap_or_default(),
                completed: done.contains_key(&l.id),
                completed_at: done
                    .get(&l.id)
                    .map(|t| rfc3339_millis(*t))
                    .unwrap_or_default(),
            })
            .collect();
        let completed = lessons.iter().filter(|l| l.completed).count() as u32;
        let total = lessons.len() as u32;
        let certificate = store::certificate_of(&self.store, &who.user_id, &course.id).await?;
        Ok(Enrolment {
            course_id: course.id.clone(),
            course_title: course.title.clone(),
            user_id: who.user_id.clone(),
            enrolled_at: rfc3339_millis(enrolled_at),
            lessons,
            completed_lessons: completed,
            total_lessons: total,
            complete: total > 0 && completed == total,
            certificate_id: certificate.map(|c| c.id),
        })
    }

    /// `enroll`: enrols the caller; enrolling again changes nothing.
    pub async fn enroll(&self, who: &Who, r: &CourseRef) -> Result<Enrolment, MeshError> {
        let (course, lessons) = self.course(&r.id).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if store::enroll(&mut tx, &who.user_id, &course.id, now).await? {
            let mut out = Staged::new(Some(&self.publisher));
            out.add(NewEvent::new(
                kinds::TRAINING_ENROLLED,
                Some(&who.user_id),
                serde_json::json!({ "course_id": course.id, "course_title": course.title }),
            ))?;
            out.commit(tx).await?;
        } else {
            drop(tx);
            if store::enrolled_at(&self.store, &who.user_id, &course.id)
                .await?
                .is_none()
            {
                return Err(course_not_found()); // deleted meanwhile
            }
        }
        let at = store::enrolled_at(&self.store, &who.user_id, &course.id)
            .await?
            .unwrap_or(now);
        self.enrolment(who, &course, &lessons, at).await
    }

    /// `progress`: the caller's enrolments, newest first.
    pub async fn progress(&self, who: &Who) -> Result<Enrolments, MeshError> {
        let mut items = Vec::new();
        for (course_id, at) in store::enrolments(&self.store, &who.user_id).await? {
            if let Some((course, lessons)) = store::get_course(&self.store, &course_id).await? {
                items.push(self.enrolment(who, &course, &lessons, at).await?);
            }
        }
        Ok(Enrolments {
            total: items.len() as u64,
            items,
        })
    }

    /// `mark_lesson`: the caller must be enrolled and the lesson one of the course's.
    pub async fn mark_lesson(&self, who: &Who, m: MarkLesson) -> Result<Enrolment, MeshError> {
        common::validate::id("id", &m.course_id)?;
        let mut fields = Fields::new();
        match &m.lesson_id {
            Some(l) if !l.is_empty() => {}
            _ => fields.check("lesson_id", Err("is required".into())),
        }
        if m.completed.is_none() {
            fields.check("completed", Err("is required".into()));
        }
        fields.finish()?;
        let lesson_id = m.lesson_id.unwrap_or_default();
        let completed = m.completed.unwrap_or_default();
        let (course, lessons) = self.course(&m.course_id).await?;
        let Some(lesson) = lessons.iter().find(|l| l.id == lesson_id) else {
            return Err(field_error(
                "lesson_id",
                "is not a lesson of this course".into(),
            ));
        };
        let Some(at) = store::enrolled_at(&self.store, &who.user_id, &course.id).await? else {
            return Err(not_enrolled());
        };
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let outcome = store::mark_lesson(
            &mut tx,
            &who.user_id,
            &course.id,
            &lesson.id,
            completed,
            now,
        )
        .await?
        .ok_or_else(not_enrolled)?;
        let mut out = Staged::new(Some(&self.publisher));
        if outcome.changed && completed {
            out.add(NewEvent::new(
                kinds::TRAINING_LESSON_COMPLETED,
                Some(&who.user_id),
                serde_json::json!({
                    "course_id": course.id,
                    "lesson_id": lesson.id,
                    "lesson_title": lesson.title,
                }),
            ))?;
        }
        if let Some(cert) = &outcome.issued {
            out.add(issued(cert))?;
        }
        out.commit(tx).await?;
        self.enrolment(who, &course, &lessons, at).await
    }

    fn view(&self, who: &Who, a: &AssessmentRow, used: i64) -> Result<Assessment, MeshError> {
        let questions: Vec<StoredQuestion> = serde_json::from_str(&a.questions).map_err(|e| {
            tracing::error!(assessment = %a.id, error = %e, "stored questions unreadable");
            MeshError::internal("stored assessment unreadable")
        })?;
        Ok(Assessment {
            id: a.id.clone(),
            course_id: a.course_id.clone(),
            title: a.title.clone(),
            questions: questions
                .into_iter()
                .map(|q| Question {
                    text: q.text,
                    choices: q.choices,
                    answer: who.admin.then_some(q.answer),
                })
                .collect(),
            max_attempts: u32::try_from(a.max_attempts).unwrap_or_default(),
            attempts_used: u32::try_from(used).unwrap_or_default(),
            created_at: rfc3339_millis(a.created_at),
        })
    }

    /// `list_assessments`: oldest first; answers only for admins.
    pub async fn list_assessments(
        &self,
        who: &Who,
        r: &CourseRef,
    ) -> Result<Assessments, MeshError> {
        let (course, _) = self.course(&r.id).await?;
        let mut items = Vec::new();
        for a in store::assessments(&self.store, &course.id).await? {
            let used = store::attempts_used(&self.store, &a.id, &who.user_id).await?;
            items.push(self.view(who, &a, used)?);
        }
        Ok(Assessments {
            total: items.len() as u64,
            items,
        })
    }

    /// `create_assessment` (admin).
    pub async fn create_assessment(
        &self,
        who: &Who,
        n: NewAssessment,
    ) -> Result<Assessment, MeshError> {
        admin_only(who, "create an assessment")?;
        let (course, _) = self.course(&n.course_id).await?;
        let mut fields = Fields::new();
        validate::assessment(&n, &mut fields);
        fields.finish()?;
        let questions: Vec<StoredQuestion> = n
            .questions
            .iter()
            .map(|q| StoredQuestion {
                text: q.text.clone().unwrap_or_default(),
                choices: q.choices.clone(),
                answer: u32::try_from(q.answer.unwrap_or_default()).unwrap_or_default(),
            })
            .collect();
        let row = AssessmentRow {
            id: uuid::Uuid::new_v4().to_string(),
            course_id: course.id.clone(),
            title: n.title.unwrap_or_default(),
            questions: serde_json::to_string(&questions)
                .map_err(|_| MeshError::internal("questions not encodable"))?,
            max_attempts: n.max_attempts.unwrap_or(validate::MAX_ATTEMPTS_DEFAULT),
            created_at: now_ms(),
        };
        if !store::insert_assessment(&self.store, &row).await? {
            return Err(course_not_found());
        }
        self.view(who, &row, 0)
    }

    /// `submit`: scores the caller's answers against the course's pass mark and records
    /// the attempt; issues the certificate if this completes the course.
    pub async fn submit(&self, who: &Who, s: Submit) -> Result<Scored, MeshError> {
        common::validate::id("id", &s.assessment_id)?;
        let a = store::get_assessment(&self.store, &s.assessment_id)
            .await?
            .ok_or_else(|| MeshError::not_found("assessment not found"))?;
        let mut fields = Fields::new();
        if let Some(c) = &s.course_id {
            if c != &a.course_id {
                fields.check("course_id", Err("is not this assessment's course".into()));
            }
        }
        let questions: Vec<StoredQuestion> = serde_json::from_str(&a.questions)
            .map_err(|_| MeshError::internal("stored assessment unreadable"))?;
        if !s.answers_given {
            fields.check("answers", Err("is required".into()));
        } else if s.answers.len() != questions.len() {
            fields.check(
                "answers",
                Err(format!(
                    "must hold {} answers, one per question",
                    questions.len()
                )),
            );
        } else if let Some((i, _)) = s
            .answers
            .iter()
            .zip(&questions)
            .enumerate()
            .find(|(_, (a, q))| **a < 0 || **a >= q.choices.len() as i64)
        {
            fields.check(
                "answers",
                Err(format!("answer {i} is not a choice index of its question")),
            );
        }
        fields.finish()?;
        let (course, _) = store::get_course(&self.store, &a.course_id)
            .await?
            .ok_or_else(course_not_found)?;
        if store::enrolled_at(&self.store, &who.user_id, &course.id)
            .await?
            .is_none()
        {
            return Err(not_enrolled());
        }
        let right = s
            .answers
            .iter()
            .zip(&questions)
            .filter(|(a, q)| **a == i64::from(q.answer))
            .count();
        let score = (right * 100 / questions.len().max(1)) as i64;
        let passed = score >= course.pass_mark;
        let attempt = AttemptRow {
            id: uuid::Uuid::new_v4().to_string(),
            assessment_id: a.id.clone(),
            course_id: course.id.clone(),
            user_id: who.user_id.clone(),
            score,
            passed,
            answers: serde_json::to_string(&s.answers).unwrap_or_default(),
            submitted_at: now_ms(),
        };
        for _ in 0..ATTEMPTS {
            let mut tx = self.store.begin().await?;
            match store::record_attempt(&mut tx, &attempt, a.max_attempts).await? {
                Recorded::Raced => continue,
                Recorded::NotEnrolled => return Err(not_enrolled()),
                Recorded::NoAttemptsLeft => {
                    return Err(MeshError::new(
                        Code::FailedPrecondition,
                        format!("no attempts left: all {} are used", a.max_attempts),
                    ))
                }
                Recorded::Done(outcome) => {
                    let mut out = Staged::new(Some(&self.publisher));
                    if let Some(cert) = &outcome.issued {
                        out.add(issued(cert))?;
                    }
                    out.commit(tx).await?;
                    let certificate_id = match outcome.issued {
                        Some(c) => Some(c.id),
                        None => store::certificate_of(&self.store, &who.user_id, &course.id)
                            .await?
                            .map(|c| c.id),
                    };
                    return Ok(Scored {
                        score: score as u32,
                        passed,
                        certificate_id,
                        attempt: u32::try_from(outcome.attempt).unwrap_or_default(),
                        attempts_left: u32::try_from(a.max_attempts - outcome.attempt)
                            .unwrap_or_default(),
                    });
                }
            }
        }
        Err(MeshError::unavailable(
            "attempts are being submitted concurrently, try again",
        ))
    }

    /// `list_certificates`: the caller's (an admin may name a user).
    pub async fn list_certificates(
        &self,
        who: &Who,
        l: &ListCertificates,
    ) -> Result<Certificates, MeshError> {
        let user = if l.user_id.is_empty() || l.user_id == who.user_id {
            who.user_id.as_str()
        } else if who.admin {
            l.user_id.as_str()
        } else {
            return Err(MeshError::new(
                Code::PermissionDenied,
                "only an admin may list other users' certificates",
            ));
        };
        let items: Vec<Certificate> = store::certificates(&self.store, user)
            .await?
            .iter()
            .map(CertificateRow::to_certificate)
            .collect();
        Ok(Certificates {
            total: items.len() as u64,
            items,
        })
    }

    /// `get_certificate`: the owner's or an admin's.
    pub async fn get_certificate(
        &self,
        who: &Who,
        r: &CertificateRef,
    ) -> Result<Certificate, MeshError> {
        common::validate::id("id", &r.id)?;
        match store::get_certificate(&self.store, &r.id).await? {
            Some(c) if who.may_see(&c.user_id) => Ok(c.to_certificate()),
            _ => Err(MeshError::not_found("certificate not found")),
        }
    }
}

/// The event of certificate `c`, issued.
fn issued(c: &CertificateRow) -> NewEvent {
    NewEvent::new(
        kinds::TRAINING_CERTIFICATE_ISSUED,
        Some(&c.user_id),
        serde_json::json!({
            "certificate_id": c.id,
            "course_id": c.course_id,
            "course_title": c.course_title,
            "score": c.score,
        }),
    )
}

impl Service for Training {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, req: Request) -> BoxFuture<'_, Result<Bytes, MeshError>> {
        Box::pin(async move {
            let who = Who::of(req.caller.as_ref())?;
            match Cmd::parse(&req)? {
                Cmd::CreateCourse(c) => ops::CREATE_COURSE.reply(self.create_course(&who, c).await),
                Cmd::UpdateCourse(u) => ops::UPDATE_COURSE.reply(self.update_course(&who, u).await),
                Cmd::GetCourse(r) => ops::GET_COURSE.reply(self.get_course(&r).await),
                Cmd::ListCourses(l) => ops::LIST_COURSES.reply(self.list_courses(&l).await),
                Cmd::DeleteCourse(r) => {
                    ops::DELETE_COURSE.reply(self.delete_course(&who, &r).await)
                }
                Cmd::Enroll(r) => ops::ENROLL.reply(self.enroll(&who, &r).await),
                Cmd::Progress(_) => ops::PROGRESS.reply(self.progress(&who).await),
                Cmd::MarkLesson(m) => ops::MARK_LESSON.reply(self.mark_lesson(&who, m).await),
                Cmd::ListAssessments(r) => {
                    ops::LIST_ASSESSMENTS.reply(self.list_assessments(&who, &r).await)
                }
                Cmd::CreateAssessment(n) => {
                    ops::CREATE_ASSESSMENT.reply(self.create_assessment(&who, n).await)
                }
                Cmd::Submit(s) => ops::SUBMIT.reply(self.submit(&who, s).await),
                Cmd::ListCertificates(l) => {
                    ops::LIST_CERTIFICATES.reply(self.list_certificates(&who, &l).await)
                }
                Cmd::GetCertificate(r) => {
                    ops::GET_CERTIFICATE.reply(self.get_certificate(&who, &r).await)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
