//! All SQL of the `training` service: tables `training_courses`, `training_lessons`,
//! `training_assessments`, `training_enrolments`, `training_progress`, `training_attempts`
//! and `training_certificates` (see `actors/migrations/0007_training.sql`).
//!
//! Every change that touches more than one row runs in one transaction, and each one opens
//! with a write, so on SQLite it holds the file's write lock from its first statement and
//! never has to upgrade a read snapshot. A learner's lesson marks and submits on one course
//! open by writing their enrolment row, which serialises them (see [`lock_enrolment`]). Two guards live in the schema itself, so they
//! hold however requests race across nodes: an attempt number is unique per (assessment,
//! user), and a certificate is unique per (user, course).

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row as _, Transaction};

use super::messages::{Certificate, Course, Lesson};
use crate::mesh::{Code, MeshError};
use crate::store::time::rfc3339_millis;
use crate::store::{db_error, Store};

/// One row of `training_courses`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourseRow {
    /// Id (a UUID).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Percent to pass.
    pub pass_mark: i64,
    /// The admin who created it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One row of `training_lessons`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LessonRow {
    /// Id (a UUID).
    pub id: String,
    /// 1-based place in the course.
    pub position: i64,
    /// Title.
    pub title: String,
    /// Content.
    pub content: String,
}

/// One row of `training_assessments`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssessmentRow {
    /// Id (a UUID).
    pub id: String,
    /// The course.
    pub course_id: String,
    /// Title.
    pub title: String,
    /// The questions with their answers, as JSON (`[{"text", "choices", "answer"}]`).
    pub questions: String,
    /// Attempts a learner has.
    pub max_attempts: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// One row of `training_attempts`, before its number is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// Id (a UUID).
    pub id: String,
    /// The assessment.
    pub assessment_id: String,
    /// Its course.
    pub course_id: String,
    /// The learner.
    pub user_id: String,
    /// Percent.
    pub score: i64,
    /// Whether it passed.
    pub passed: bool,
    /// The answers, as JSON.
    pub answers: String,
    /// Unix ms.
    pub submitted_at: i64,
}

/// One row of `training_certificates`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    /// Id (a UUID).
    pub id: String,
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The course's title at issue.
    pub course_title: String,
    /// The best passing score.
    pub score: i64,
    /// Unix ms.
    pub issued_at: i64,
}

const COURSE_COLUMNS: &str =
    "id, title, description, pass_mark, created_by, created_at, updated_at, version";
const ASSESSMENT_COLUMNS: &str = "id, course_id, title, questions, max_attempts, created_at";
const CERTIFICATE_COLUMNS: &str = "id, user_id, course_id, course_title, score, issued_at";

impl CourseRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            title: r.try_get("title")?,
            description: r.try_get("description")?,
            pass_mark: r.try_get("pass_mark")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            version: r.try_get("version")?,
        })
    }

    /// The client view, with `lessons` in order.
    pub fn to_course(&self, lessons: &[LessonRow]) -> Course {
        Course {
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            pass_mark: u32::try_from(self.pass_mark).unwrap_or_default(),
            lessons: lessons.iter().map(LessonRow::to_lesson).collect(),
            created_by: self.created_by.clone(),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}

impl LessonRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            position: r.try_get("position")?,
            title: r.try_get("title")?,
            content: r.try_get("content")?,
        })
    }

    /// The client view.
    pub fn to_lesson(&self) -> Lesson {
        Lesson {
            id: self.id.clone(),
            position: u32::try_from(self.position).unwrap_or_default(),
            title: self.title.clone(),
            content: self.content.clone(),
        }
    }
}

impl AssessmentRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            course_id: r.try_get("course_id")?,
            title: r.try_get("title")?,
            questions: r.try_get("questions")?,
            max_attempts: r.try_get("max_attempts")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

impl CertificateRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            course_id: r.try_get("course_id")?,
            course_title: r.try_get("course_title")?,
            score: r.try_get("score")?,
            issued_at: r.try_get("issued_at")?,
        })
    }

    /// The client view.
    pub fn to_certificate(&self) -> Certificate {
        Certificate {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            course_id: self.course_id.clone(),
            course_title: self.course_title.clone(),
            score: u32::try_from(self.score).unwrap_or_default(),
            issued_at: rfc3339_millis(self.issued_at),
        }
    }
}

async fn insert_lessons(
    tx: &mut Transaction<'_, Any>,
    course_id: &str,
    lessons: &[LessonRow],
) -> Result<(), MeshError> {
    for l in lessons {
        sqlx::query(
            "INSERT INTO training_lessons (id, course_id, position, title, content) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&l.id)
        .bind(course_id)
        .bind(l.position)
        .bind(&l.title)
        .bind(&l.content)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Inserts a course and its lessons, in one transaction.
pub async fn insert_course(
    store: &Store,
    c: &CourseRow,
    lessons: &[LessonRow],
) -> Result<(), MeshError> {
    let mut tx = store.writer().begin().await.map_err(db_error)?;
    sqlx::query(&format!(
        "INSERT INTO training_courses ({COURSE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&c.id)
    .bind(&c.title)
    .bind(&c.description)
    .bind(c.pass_mark)
    .bind(&c.created_by)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.version)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    insert_lessons(&mut tx, &c.id, lessons).await?;
    tx.commit().await.map_err(db_error)
}

/// The lessons of a course, in order.
pub async fn lessons(store: &Store, course_id: &str) -> Result<Vec<LessonRow>, MeshError> {
    sqlx::query(
        "SELECT id, position, title, content FROM training_lessons WHERE course_id = $1 \
         ORDER BY position",
    )
    .bind(course_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(LessonRow::from_row)
    .collect::<Result<_, _>>()
    .map_err(db_error)
}

/// One course by id, with its lessons in order.
pub async fn get_course(
    store: &Store,
    id: &str,
) -> Result<Option<(CourseRow, Vec<LessonRow>)>, MeshError> {
    let sql = format!("SELECT {COURSE_COLUMNS} FROM training_courses WHERE id = $1");
    let Some(course) = by_id(store, &sql, id, CourseRow::from_row).await? else {
        return Ok(None);
    };
    let lessons = lessons(store, id).await?;
    Ok(Some((course, lessons)))
}

/// One page of courses, newest first, with their lessons; and the total.
pub async fn list_courses(
    store: &Store,
    limit: i64,
    offset: i64,
) -> Result<(Vec<(CourseRow, Vec<LessonRow>)>, i64), MeshError> {
    let (rows, total) = crate::store::page_where_equal(
        store,
        "training_courses",
        COURSE_COLUMNS,
        &[],
        limit,
        offset,
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let c = CourseRow::from_row(r).map_err(db_error)?;
        let l = lessons(store, &c.id).await?;
        out.push((c, l));
    }
    Ok((out, total))
}

/// Writes `c` and replaces its lessons with `lessons` if the stored course is still at
/// version `expected` (`false` otherwise, nothing written). Progress on lessons that are
/// gone is dropped; lessons that keep their id keep their progress.
pub async fn replace_course(
    store: &Store,
    c: &CourseRow,
    expected: i64,
    lessons: &[LessonRow],
) -> Result<bool, MeshError> {
    let mut tx = store.writer().begin().await.map_err(db_error)?;
    let done = sqlx::query(
        "UPDATE training_courses SET title = $1, description = $2, pass_mark = $3, \
         updated_at = $4, version = $5 WHERE id = $6 AND version = $7",
    )
    .bind(&c.title)
    .bind(&c.description)
    .bind(c.pass_mark)
    .bind(c.updated_at)
    .bind(c.version)
    .bind(&c.id)
    .bind(expected)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if done.rows_affected() != 1 {
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM training_lessons WHERE course_id = $1")
        .bind(&c.id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    insert_lessons(&mut tx, &c.id, lessons).await?;
    sqlx::query(
        "DELETE FROM training_progress WHERE course_id = $1 AND lesson_id NOT IN \
         (SELECT id FROM training_lessons WHERE course_id = $2)",
    )
    .bind(&c.id)
    .bind(&c.id)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

/// Deletes a course at version `expected` with its lessons, assessments, attempts,
/// enrolments and progress, in one transaction; `false` when it moved on. Certificates
/// already issued stay: they are records of what was passed.
pub async fn delete_course(store: &Store, id: &str, expected: i64) -> Result<bool, MeshError> {
    let mut tx = store.writer().begin().await.map_err(db_error)?;
    let done = sqlx::query("DELETE FROM training_courses WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(expected)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    if done.rows_affected() != 1 {
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    for table in [
        "training_lessons",
        "training_assessments",
        "training_attempts",
        "training_enrolments",
        "training_progress",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE course_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

/// Inserts an assessment; `false` when its course no longer exists (nothing written).
pub async fn insert_assessment(store: &Store, a: &AssessmentRow) -> Result<bool, MeshError> {
    let done = sqlx::query(&format!(
        "INSERT INTO training_assessments ({ASSESSMENT_COLUMNS}) \
         SELECT $1, $2, $3, $4, $5, $6 FROM training_courses WHERE id = $7"
    ))
    .bind(&a.id)
    .bind(&a.course_id)
    .bind(&a.title)
    .bind(&a.questions)
    .bind(a.max_attempts)
    .bind(a.created_at)
    .bind(&a.course_id)
    .execute(store.writer())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// One assessment by id.
pub async fn get_assessment(store: &Store, id: &str) -> Result<Option<AssessmentRow>, MeshError> {
    let sql = format!("SELECT {ASSESSMENT_COLUMNS} FROM training_assessments WHERE id = $1");
    by_id(store, &sql, id, AssessmentRow::from_row).await
}

/// The row `sql` (one `$1` parameter: `id`) selects, if any, decoded by `from_row`.
async fn by_id<T>(
    store: &Store,
    sql: &str,
    id: &str,
    from_row: fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, MeshError> {
    let r = sqlx::query(sql)
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_error)?;
    r.as_ref().map(from_row).transpose().map_err(db_error)
}

/// The assessments of a course, oldest first.
pub async fn assessments(store: &Store, course_id: &str) -> Result<Vec<AssessmentRow>, MeshError> {
    sqlx::query(&format!(
        "SELECT {ASSESSMENT_COLUMNS} FROM training_assessments WHERE course_id = $1 \
         ORDER BY created_at, id"
    ))
    .bind(course_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(AssessmentRow::from_row)
    .collect::<Result<_, _>>()
    .map_err(db_error)
}

/// Attempts `user_id` has made at an assessment.
pub async fn attempts_used(
    store: &Store,
    assessment_id: &str,
    user_id: &str,
) -> Result<i64, MeshError> {
    sqlx::query("SELECT COUNT(*) FROM training_attempts WHERE assessment_id = $1 AND user_id = $2")
        .bind(assessment_id)
        .bind(user_id)
        .fetch_one(store.pool())
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)
}

/// Enrols `user_id` in a course on `conn`; `false` when already enrolled.
pub async fn enroll(
    conn: &mut AnyConnection,
    user_id: &str,
    course_id: &str,
    now: i64,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "INSERT INTO training_enrolments (user_id, course_id, enrolled_at) \
         SELECT $1, $2, $3 FROM training_courses WHERE id = $4 \
         ON CONFLICT (user_id, course_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(course_id)
    .bind(now)
    .bind(course_id)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// When `user_id` enrolled in a course (unix ms), if they did.
pub async fn enrolled_at(
    store: &Store,
    user_id: &str,
    course_id: &str,
) -> Result<Option<i64>, MeshError> {
    let r = sqlx::query(
        "SELECT enrolled_at FROM training_enrolments WHERE user_id = $1 AND course_id = $2",
    )
    .bind(user_id)
    .bind(course_id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    r.map(|r| r.try_get(0)).transpose().map_err(db_error)
}

/// The courses `user_id` is enrolled in, newest enrolment first: (course id, unix ms).
pub async fn enrolments(store: &Store, user_id: &str) -> Result<Vec<(String, i64)>, MeshError> {
    sqlx::query(
        "SELECT course_id, enrolled_at FROM training_enrolments WHERE user_id = $1 \
         ORDER BY enrolled_at DESC, course_id",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()
    .map_err(db_error)
}

/// The lessons `user_id` completed in a course: (lesson id, unix ms).
pub async fn completed(
    store: &Store,
    user_id: &str,
    course_id: &str,
) -> Result<Vec<(String, i64)>, MeshError> {
    sqlx::query(
        "SELECT lesson_id, completed_at FROM training_progress \
         WHERE user_id = $1 AND course_id = $2",
    )
    .bind(user_id)
    .bind(course_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()
    .map_err(db_error)
}

/// Opens `user_id`'s transaction on a course by writing their enrolment row (a no-op
/// update); `false` when they are not enrolled (the transaction is rolled back then).
///
/// The write serialises the learner's changes to the course: PostgreSQL holds the row lock
/// until commit, SQLite the file's write lock. A lesson mark and a submit racing on two
/// nodes thus run one after the other, and the second sees the first's rows when it checks
/// whether the course is complete and passed (read committed reads per statement).
async fn lock_enrolment(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    course_id: &str,
) -> Result<bool, MeshError> {
    let done = sqlx::query(
        "UPDATE training_enrolments SET enrolled_at = enrolled_at \
         WHERE user_id = $1 AND course_id = $2",
    )
    .bind(user_id)
    .bind(course_id)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// What a change of progress or a submitted attempt did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether a row changed (a lesson newly completed or withdrawn; an attempt recorded).
    pub changed: bool,
    /// The attempt's number, for a submit.
    pub attempt: i64,
    /// The certificate this change issued, if it issued one.
    pub issued: Option<CertificateRow>,
}

/// Marks (or with `completed == false` unmarks) a lesson for `user_id`, and issues the
/// certificate if that completes an already passed course, in the caller's transaction
/// `tx` (committed with the events that report it). `None` when the learner is not
/// enrolled (nothing written).
pub async fn mark_lesson(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    course_id: &str,
    lesson_id: &str,
    completed: bool,
    now: i64,
) -> Result<Option<Outcome>, MeshError> {
    if !lock_enrolment(tx, user_id, course_id).await? {
        return Ok(None);
    }
    let done = if completed {
        sqlx::query(
            "INSERT INTO training_progress (user_id, course_id, lesson_id, completed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, lesson_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(course_id)
        .bind(lesson_id)
        .bind(now)
        .execute(&mut **tx)
        .await
    } else {
        sqlx::query("DELETE FROM training_progress WHERE user_id = $1 AND lesson_id = $2")
            .bind(user_id)
            .bind(lesson_id)
            .execute(&mut **tx)
            .await
    }
    .map_err(db_error)?;
    let changed = done.rows_affected() == 1;
    let issued = if changed && completed {
        issue_if_earned(tx, user_id, course_id, now).await?
    } else {
        None
    };
    Ok(Some(Outcome {
        changed,
        attempt: 0,
        issued,
    }))
}

/// What [`record_attempt`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt is recorded (and maybe issued the certificate).
    Done(Outcome),
    /// Every attempt is used; nothing written.
    NoAttemptsLeft,
    /// The learner is not enrolled in the course; nothing written.
    NotEnrolled,
    /// Another attempt took the same number first; nothing written, try again.
    Raced,
}

/// Records a scored attempt as the next of `a.user_id`'s at its assessment, unless
/// `max_attempts` are used already, and issues the certificate if the attempt passed and
/// the course is complete, in the caller's transaction `tx`. Unless it answers
/// [`Recorded::Done`], the caller rolls `tx` back.
///
/// Two attempts racing for the same number collide on the unique (assessment, user,
/// attempt); the loser writes nothing and answers [`Recorded::Raced`].
pub async fn record_attempt(
    tx: &mut Transaction<'_, Any>,
    a: &AttemptRow,
    max_attempts: i64,
) -> Result<Recorded, MeshError> {
    if !lock_enrolment(tx, &a.user_id, &a.course_id).await? {
        return Ok(Recorded::NotEnrolled);
    }
    let done = sqlx::query(
        "INSERT INTO training_attempts (id, assessment_id, course_id, user_id, attempt, score, \
         passed, answers, submitted_at) \
         SELECT $1, $2, $3, $4, COUNT(*) + 1, $5, $6, $7, $8 FROM training_attempts \
         WHERE assessment_id = $9 AND user_id = $10 HAVING COUNT(*) < $11",
    )
    .bind(&a.id)
    .bind(&a.assessment_id)
    .bind(&a.course_id)
    .bind(&a.user_id)
    .bind(a.score)
    .bind(i64::from(a.passed))
    .bind(&a.answers)
    .bind(a.submitted_at)
    .bind(&a.assessment_id)
    .bind(&a.user_id)
    .bind(max_attempts)
    .execute(&mut **tx)
    .await;
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            let e = db_error(e);
            if e.code == Code::AlreadyExists {
                return Ok(Recorded::Raced);
            }
            return Err(e);
        }
    };
    if done.rows_affected() != 1 {
        return Ok(Recorded::NoAttemptsLeft);
    }
    let attempt: i64 = sqlx::query("SELECT attempt FROM training_attempts WHERE id = $1")
        .bind(&a.id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    let issued = if a.passed {
        issue_if_earned(tx, &a.user_id, &a.course_id, a.submitted_at).await?
    } else {
        None
    };
    Ok(Recorded::Done(Outcome {
        changed: true,
        attempt,
        issued,
    }))
}

/// Issues `user_id`'s certificate of a course when every lesson is completed and every
/// assessment of the course (at least one) has a passing attempt, unless one is issued
/// already: the unique (user, course) makes a second insert, from any node, a no-op.
async fn issue_if_earned(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    course_id: &str,
    now: i64,
) -> Result<Option<CertificateRow>, MeshError> {
    let r = sqlx::query(
        "SELECT c.title, \
         (SELECT COUNT(*) FROM training_lessons l WHERE l.course_id = c.id) AS lessons, \
         (SELECT COUNT(*) FROM training_progress p JOIN training_lessons l ON l.id = p.lesson_id \
           WHERE p.user_id = $1 AND l.course_id = c.id) AS done, \
         (SELECT COUNT(*) FROM training_assessments a WHERE a.course_id = c.id) AS assessments, \
         (SELECT COUNT(*) FROM training_assessments a WHERE a.course_id = c.id AND NOT EXISTS \
           (SELECT 1 FROM training_attempts t WHERE t.assessment_id = a.id \
            AND t.user_id = $2 AND t.passed = 1)) AS unpassed, \
         (SELECT COALESCE(MAX(t.score), 0) FROM training_attempts t WHERE t.course_id = c.id \
           AND t.user_id = $3 AND t.passed = 1) AS best \
         FROM training_courses c WHERE c.id = $4",
    )
    .bind(user_id)
    .bind(user_id)
    .bind(user_id)
    .bind(course_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(r) = r else { return Ok(None) };
    let get = |name: &str| r.try_get::<i64, _>(name).map_err(db_error);
    let (lessons, done, assessments, unpassed) = (
        get("lessons")?,
        get("done")?,
        get("assessments")?,
        get("unpassed")?,
    );
    if lessons == 0 || done < lessons || assessments == 0 || unpassed > 0 {
        return Ok(None);
    }
    let cert = CertificateRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_string(),
        course_id: course_id.to_string(),
        course_title: r.try_get("title").map_err(db_error)?,
        score: get("best")?,
        issued_at: now,
    };
    let done = sqlx::query(&format!(
        "INSERT INTO training_certificates ({CERTIFICATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id, course_id) DO NOTHING"
    ))
    .bind(&cert.id)
    .bind(&cert.user_id)
    .bind(&cert.course_id)
    .bind(&cert.course_title)
    .bind(cert.score)
    .bind(cert.issued_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok((done.rows_affected() == 1).then_some(cert))
}

/// `user_id`'s certificate of a course, if issued.
pub async fn certificate_of(
    store: &Store,
    user_id: &str,
    course_id: &str,
) -> Result<Option<CertificateRow>, MeshError> {
    let r = sqlx::query(&format!(
        "SELECT {CERTIFICATE_COLUMNS} FROM training_certificates \
         WHERE user_id = $1 AND course_id = $2"
    ))
    .bind(user_id)
    .bind(course_id)
    .fetch_optional(store.writer())
    .await
    .map_err(db_error)?;
    r.as_ref()
        .map(CertificateRow::from_row)
        .transpose()
        .map_err(db_error)
}

/// One certificate by id.
pub async fn get_certificate(store: &Store, id: &str) -> Result<Option<CertificateRow>, MeshError> {
    let sql = format!("SELECT {CERTIFICATE_COLUMNS} FROM training_certificates WHERE id = $1");
    by_id(store, &sql, id, CertificateRow::from_row).await
}

/// A user's certificates, newest first.
pub async fn certificates(store: &Store, user_id: &str) -> Result<Vec<CertificateRow>, MeshError> {
    sqlx::query(&format!(
        "SELECT {CERTIFICATE_COLUMNS} FROM training_certificates WHERE user_id = $1 \
         ORDER BY issued_at DESC, id"
    ))
    .bind(user_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?
    .iter()
    .map(CertificateRow::from_row)
    .collect::<Result<_, _>>()
    .map_err(db_error)
}
