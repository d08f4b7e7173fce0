//! Training (`/training/*`): courses with ordered lessons, enrolment and per-lesson
//! progress, assessments scored on submit, and certificates. Admins write courses and
//! assessments; everyone signed in reads them, but only admins see the answers. Progress,
//! attempts and certificates are the caller's own.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_actors::training::{messages as dm, ops};
use utoipa::ToSchema;

use super::auth::Caller;
use super::identity::{List, Page, Paging};
use super::json::Json as Body;
use super::object::Object;
use super::openapi::ErrorBody;
use super::request_id::Rid;
use super::{ask, ApiError, AppState};

/// A lesson as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LessonView {
    /// Opaque id; give it back in `PUT /training/courses/:id` to keep the lesson.
    pub id: String,
    /// 1-based place in the course.
    pub position: u32,
    /// Title.
    pub title: String,
    /// Content; may be empty.
    pub content: String,
}

/// A course as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseView {
    /// Opaque id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description; may be empty.
    pub description: String,
    /// Percent an assessment must score to pass.
    pub pass_mark: u32,
    /// The lessons, in order.
    pub lessons: Vec<LessonView>,
    /// The admin who created it.
    pub created_by: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Bumped by every change.
    pub version: u64,
}

impl From<dm::Course> for CourseView {
    fn from(c: dm::Course) -> Self {
        Self {
            id: c.id,
            title: c.title,
            description: c.description,
            pass_mark: c.pass_mark,
            lessons: c
                .lessons
                .into_iter()
                .map(|l| LessonView {
                    id: l.id,
                    position: l.position,
                    title: l.title,
                    content: l.content,
                })
                .collect(),
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// One lesson's state for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct LessonProgressView {
    /// Lesson id.
    pub lesson_id: String,
    /// Lesson title.
    pub title: String,
    /// 1-based place in the course.
    pub position: u32,
    /// Whether the caller completed it.
    pub completed: bool,
    /// RFC 3339 UTC, when completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// The caller's enrolment in one course.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentView {
    /// Course id.
    pub course_id: String,
    /// Course title.
    pub course_title: String,
    /// The learner.
    pub user_id: String,
    /// RFC 3339 UTC.
    pub enrolled_at: String,
    /// Every lesson, in order, with the caller's progress.
    pub lessons: Vec<LessonProgressView>,
    /// Lessons completed.
    pub completed_lessons: u32,
    /// Lessons in the course.
    pub total_lessons: u32,
    /// Whether every lesson is completed.
    pub complete: bool,
    /// The certificate, once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
}

impl From<dm::Enrolment> for EnrolmentView {
    fn from(e: dm::Enrolment) -> Self {
        Self {
            course_id: e.course_id,
            course_title: e.course_title,
            user_id: e.user_id,
            enrolled_at: e.enrolled_at,
            lessons: e
                .lessons
                .into_iter()
                .map(|l| LessonProgressView {
                    lesson_id: l.lesson_id,
                    title: l.title,
                    position: l.position,
                    completed: l.completed,
                    completed_at: (!l.completed_at.is_empty()).then_some(l.completed_at),
                })
                .collect(),
            completed_lessons: e.completed_lessons,
            total_lessons: e.total_lessons,
            complete: e.complete,
            certificate_id: e.certificate_id,
        }
    }
}

/// A question; `answer` only for admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionView {
    /// The question.
    pub text: String,
    /// The choices, in order.
    pub choices: Vec<String>,
    /// The right choice's index (admins only; never shown to learners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<u32>,
}

/// An assessment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentView {
    /// Opaque id.
    pub id: String,
    /// The course it assesses.
    pub course_id: String,
    /// Title.
    pub title: String,
    /// The questions, in order.
    pub questions: Vec<QuestionView>,
    /// Attempts a learner has.
    pub max_attempts: u32,
    /// Attempts the caller has used.
    pub attempts_used: u32,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<dm::Assessment> for AssessmentView {
    fn from(a: dm::Assessment) -> Self {
        Self {
            id: a.id,
            course_id: a.course_id,
            title: a.title,
            questions: a
                .questions
                .into_iter()
                .map(|q| QuestionView {
                    text: q.text,
                    choices: q.choices,
                    answer: q.answer,
                })
                .collect(),
            max_attempts: a.max_attempts,
            attempts_used: a.attempts_used,
            created_at: a.created_at,
        }
    }
}

/// The scored attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredView {
    /// Percent of questions answered right, rounded down.
    pub score: u32,
    /// Whether the score reaches the course's pass mark.
    pub passed: bool,
    /// The caller's certificate of the course, once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// Which attempt this was (1-based).
    pub attempt: u32,
    /// Attempts left.
    pub attempts_left: u32,
}

/// A certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    /// Opaque id.
    pub id: String,
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The course's title when issued.
    pub course_title: String,
    /// The passing score.
    pub score: u32,
    /// RFC 3339 UTC.
    pub issued_at: String,
}

impl From<dm::Certificate> for CertificateView {
    fn from(c: dm::Certificate) -> Self {
        Self {
            id: c.id,
            user_id: c.user_id,
            course_id: c.course_id,
            course_title: c.course_title,
            score: c.score,
            issued_at: c.issued_at,
        }
    }
}

/// One lesson of a course body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct LessonBody {
    /// Title: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: String,
    /// Content: at most 100000 characters; default empty.
    #[schema(max_length = 100_000)]
    content: Option<String>,
    /// On `PUT`: the id of an existing lesson this one keeps (with learners' progress).
    id: Option<String>,
}

/// Body of `POST /training/courses` and `PUT /training/courses/:id`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct CourseBody {
    /// Title: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: String,
    /// Description: at most 2000 characters; line breaks and tabs are the only control
    /// characters allowed.
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    description: Option<String>,
    /// The lessons, in order: at least one.
    #[schema(min_items = 1, max_items = 200)]
    lessons: Vec<LessonBody>,
    /// Percent an assessment must score to pass; default 70.
    #[schema(minimum = 0, maximum = 100)]
    pass_mark: Option<i64>,
}

/// Body of `PUT /training/courses/:id/progress`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct ProgressBody {
    /// A lesson of the course.
    #[schema(min_length = 1)]
    lesson_id: String,
    /// `true` marks it completed; `false` withdraws the mark.
    completed: bool,
}

/// A choice of a question: 1 to 200 characters, not only spaces, no control characters.
#[derive(Debug, ToSchema)]
#[schema(
    min_length = 1,
    max_length = 200,
    pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
)]
pub struct ChoiceText(pub String);

/// One question of an assessment body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct QuestionBody {
    /// The question: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    text: String,
    /// 2 to 20 choices.
    #[schema(min_items = 2, max_items = 20, value_type = Vec<ChoiceText>)]
    choices: Vec<String>,
    /// The index of the right choice in `choices`.
    answer: u32,
}

/// Body of `POST /training/courses/:id/assessments`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct AssessmentBody {
    /// Title: 1 to 200 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: String,
    /// The questions, in order: at least one.
    #[schema(min_items = 1, max_items = 200)]
    questions: Vec<QuestionBody>,
    /// Attempts a learner has, 1 to 100; default 3.
    #[schema(minimum = 1, maximum = 100)]
    max_attempts: Option<i64>,
}

/// Body of `POST /training/assessments/:id/submit`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the body; the handler reads it with `Object`
pub struct SubmitBody {
    /// One choice index per question, in order.
    answers: Vec<u32>,
    /// When given, must be the assessment's course.
    course_id: Option<String>,
}

/// Filter of `GET /training/certificates`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateFilter {
    /// Only this user's (admins; anyone else only their own id); empty: the caller's.
    pub user_id: Option<String>,
}

/// A whole number (a whole float such as `2.0` is one, as in JSON Schema).
fn whole(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
            .map(|f| f as i64)
    })
}

/// A string field of an array item.
fn item_string(item: &Value, key: &str) -> Result<Option<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn lessons(o: &mut Object<'_>) -> (Vec<dm::LessonInput>, bool) {
    let Some(items) = o.array("lessons") else {
        return (Vec::new(), false);
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            o.invalid("lessons", format!("lesson {i}: must be an object"));
            break;
        }
        let read = (|| {
            Ok::<_, String>(dm::LessonInput {
                title: item_string(item, "title")?,
                content: item_string(item, "content")?,
                id: item_string(item, "id")?,
            })
        })();
        match read {
            Ok(l) => out.push(l),
            Err(e) => {
                o.invalid("lessons", format!("lesson {i}: {e}"));
                break;
            }
        }
    }
    (out, true)
}

fn course_input(body: &Value) -> Result<dm::CourseInput, ApiError> {
    let mut o = Object::new(body)?;
    let title = o.string("title");
    let description = o.string("description");
    let pass_mark = o.int("pass_mark");
    let (lessons, lessons_given) = lessons(&mut o);
    o.finish()?;
    Ok(dm::CourseInput {
        title,
        description,
        lessons,
        lessons_given,
        pass_mark,
    })
}

fn questions(o: &mut Object<'_>) -> (Vec<dm::QuestionInput>, bool) {
    let Some(items) = o.array("questions") else {
        return (Vec::new(), false);
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let read = (|| {
            if !item.is_object() {
                return Err("must be an object".to_string());
            }
            let choices = match item.get("choices") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(cs)) => cs
                    .iter()
                    .map(|c| c.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("choices must be strings")?,
                Some(_) => return Err("choices must be an array".into()),
            };
            let answer = match item.get("answer") {
                None | Some(Value::Null) => None,
                Some(v) => Some(whole(v).ok_or("answer must be a whole number")?),
            };
            Ok(dm::QuestionInput {
                text: item_string(item, "text")?,
                choices,
                answer,
            })
        })();
        match read {
            Ok(q) => out.push(q),
            Err(e) => {
                o.invalid("questions", format!("question {i}: {e}"));
                break;
            }
        }
    }
    (out, true)
}

/// `GET /training/courses?page=&per_page=`: every course, newest first.
#[utoipa::path(
    get,
    path = "/training/courses",
    tag = "training",
    security(("bearer" = [])),
    params(Paging),
    responses((status = 200, description = "A page of courses, newest first", body = Page<CourseView>))
)]
pub async fn list_courses(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<CourseView>>, ApiError> {
    let (page, per_page) = paging.resolve();
    let p: dm::CoursePage = ask(
        &state,
        ops::LIST_COURSES
            .call(dm::ListCourses { page, per_page })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(CourseView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
    }))
}

/// `POST /training/courses` (admin): 201 with the course and its lessons' ids.
#[utoipa::path(
    post,
    path = "/training/courses",
    tag = "training",
    security(("bearer" = [])),
    request_body = CourseBody,
    responses(
        (status = 201, description = "The new course", body = CourseView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn create_course(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<CourseView>), ApiError> {
    let c = course_input(&body)?;
    let course = ask(
        &state,
        ops::CREATE_COURSE
            .call(c)
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CourseView::from(course))))
}

/// `GET /training/courses/:id`.
#[utoipa::path(
    get,
    path = "/training/courses/{id}",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The course with its lessons", body = CourseView),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn get_course(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CourseView>, ApiError> {
    let c = ask(
        &state,
        ops::GET_COURSE
            .call(dm::CourseRef { id })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(c.into()))
}

/// `PUT /training/courses/:id` (admin): the course becomes the body; a lesson given with
/// the `id` of an existing one keeps it.
#[utoipa::path(
    put,
    path = "/training/courses/{id}",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = CourseBody,
    responses(
        (status = 200, description = "The course as changed", body = CourseView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn update_course(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<CourseView>, ApiError> {
    let c = course_input(&body)?;
    let course = ask(
        &state,
        ops::UPDATE_COURSE
            .call(dm::UpdateCourse {
                id,
                course: Some(c),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(course.into()))
}

/// `DELETE /training/courses/:id` (admin): 200 with the course as it was.
#[utoipa::path(
    delete,
    path = "/training/courses/{id}",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The course as it was", body = CourseView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn delete_course(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CourseView>, ApiError> {
    let c = ask(
        &state,
        ops::DELETE_COURSE
            .call(dm::CourseRef { id })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(c.into()))
}

/// `POST /training/courses/:id/enroll`: enrols the caller (again: no change).
#[utoipa::path(
    post,
    path = "/training/courses/{id}/enroll",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The caller's enrolment", body = EnrolmentView),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EnrolmentView>, ApiError> {
    let e = ask(
        &state,
        ops::ENROLL
            .call(dm::CourseRef { id })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(e.into()))
}

/// `GET /training/progress`: the caller's enrolments with per-lesson progress.
#[utoipa::path(
    get,
    path = "/training/progress",
    tag = "training",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's enrolments, newest first", body = List<EnrolmentView>))
)]
pub async fn progress(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
) -> Result<Json<List<EnrolmentView>>, ApiError> {
    let p = ask(
        &state,
        ops::PROGRESS
            .call(dm::ProgressQuery {})
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    let items: Vec<EnrolmentView> = p.items.into_iter().map(EnrolmentView::from).collect();
    Ok(Json(items.into()))
}

/// `PUT /training/courses/:id/progress`: `{"lesson_id", "completed": true}`.
#[utoipa::path(
    put,
    path = "/training/courses/{id}/progress",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = ProgressBody,
    responses(
        (status = 200, description = "The caller's enrolment as it is now", body = EnrolmentView),
        (status = 400, description = "`lesson_id` or `completed` missing, or not a lesson of this course", body = ErrorBody),
        (status = 404, description = "No such course", body = ErrorBody),
        (status = 409, description = "The caller is not enrolled", body = ErrorBody),
    )
)]
pub async fn mark_lesson(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<EnrolmentView>, ApiError> {
    let mut o = Object::new(&body)?;
    let m = dm::MarkLesson {
        course_id: id,
        lesson_id: o.string("lesson_id"),
        completed: o.bool("completed"),
    };
    o.finish()?;
    let e = ask(
        &state,
        ops::MARK_LESSON
            .call(m)
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(e.into()))
}

/// `GET /training/courses/:id/assessments`: answers only for admins.
#[utoipa::path(
    get,
    path = "/training/courses/{id}/assessments",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The course's assessments, oldest first", body = List<AssessmentView>),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn list_assessments(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<AssessmentView>>, ApiError> {
    let a = ask(
        &state,
        ops::LIST_ASSESSMENTS
            .call(dm::CourseRef { id })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    let items: Vec<AssessmentView> = a.items.into_iter().map(AssessmentView::from).collect();
    Ok(Json(items.into()))
}

/// `POST /training/courses/:id/assessments` (admin): 201 with the assessment.
#[utoipa::path(
    post,
    path = "/training/courses/{id}/assessments",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The course's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = AssessmentBody,
    responses(
        (status = 201, description = "The new assessment (with answers: the caller is an admin)", body = AssessmentView),
        (status = 400, description = "A field is missing or invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such course", body = ErrorBody),
    )
)]
pub async fn create_assessment(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<AssessmentView>), ApiError> {
    let mut o = Object::new(&body)?;
    let title = o.string("title");
    let max_attempts = o.int("max_attempts");
    let (questions, questions_given) = questions(&mut o);
    o.finish()?;
    let a = ask(
        &state,
        ops::CREATE_ASSESSMENT
            .call(dm::NewAssessment {
                course_id: id,
                title,
                questions,
                questions_given,
                max_attempts,
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(a.into())))
}

/// `POST /training/assessments/:id/submit`: `{"answers": [<index>, ...]}`, scored at once.
#[utoipa::path(
    post,
    path = "/training/assessments/{id}/submit",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The assessment's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    request_body = SubmitBody,
    responses(
        (status = 200, description = "The score; `certificate_id` once the course is complete and passed", body = ScoredView),
        (status = 400, description = "`answers` missing, of the wrong count or out of range; `course_id` not the assessment's", body = ErrorBody),
        (status = 404, description = "No such assessment", body = ErrorBody),
        (status = 409, description = "Not enrolled, or every attempt is used", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<ScoredView>, ApiError> {
    let mut o = Object::new(&body)?;
    let course_id = o.string("course_id");
    let items = o.array("answers");
    let answers_given = items.is_some();
    let answers: Option<Vec<i64>> = items.and_then(|a| a.iter().map(whole).collect());
    if answers_given && answers.is_none() {
        o.invalid("answers", "must be whole numbers (choice indexes)".into());
    }
    o.finish()?;
    let s = ask(
        &state,
        ops::SUBMIT
            .call(dm::Submit {
                assessment_id: id,
                answers: answers.unwrap_or_default(),
                answers_given,
                course_id,
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(ScoredView {
        score: s.score,
        passed: s.passed,
        certificate_id: s.certificate_id,
        attempt: s.attempt,
        attempts_left: s.attempts_left,
    }))
}

/// `GET /training/certificates`: the caller's certificates (an admin's: `user_id`'s).
#[utoipa::path(
    get,
    path = "/training/certificates",
    tag = "training",
    security(("bearer" = [])),
    params(CertificateFilter),
    responses(
        (status = 200, description = "Certificates, newest first", body = List<CertificateView>),
        (status = 403, description = "Another user's, and not an admin", body = ErrorBody),
    )
)]
pub async fn list_certificates(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Query(filter): Query<CertificateFilter>,
) -> Result<Json<List<CertificateView>>, ApiError> {
    let c = ask(
        &state,
        ops::LIST_CERTIFICATES
            .call(dm::ListCertificates {
                user_id: filter.user_id.unwrap_or_default(),
            })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    let items: Vec<CertificateView> = c.items.into_iter().map(CertificateView::from).collect();
    Ok(Json(items.into()))
}

/// `GET /training/certificates/:id`: the owner's or an admin's.
#[utoipa::path(
    get,
    path = "/training/certificates/{id}",
    tag = "training",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The certificate's id", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")),
    responses(
        (status = 200, description = "The certificate", body = CertificateView),
        (status = 404, description = "No such certificate, or not the caller's", body = ErrorBody),
    )
)]
pub async fn get_certificate(
    State(state): State<AppState>,
    Rid(rid): Rid,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CertificateView>, ApiError> {
    let c = ask(
        &state,
        ops::GET_CERTIFICATE
            .call(dm::CertificateRef { id })
            .request_id(rid)
            .caller(caller.to_proto()),
    )
    .await?;
    Ok(Json(c.into()))
}
