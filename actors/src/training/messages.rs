//! The `training` service's prost messages, written by hand (no `.proto`, no build step).
//! Field presence matters on requests (a missing title is an error of its own), so their
//! scalar fields are optional on the wire, and a list says whether it was given at all.

/// A lesson as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lesson {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// 1-based place in the course.
    #[prost(uint32, tag = "2")]
    pub position: u32,
    /// Title.
    #[prost(string, tag = "3")]
    pub title: String,
    /// Content; may be empty.
    #[prost(string, tag = "4")]
    pub content: String,
}

/// A course with its lessons in order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Course {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Title.
    #[prost(string, tag = "2")]
    pub title: String,
    /// Description; may be empty.
    #[prost(string, tag = "3")]
    pub description: String,
    /// Percent an assessment must score to pass.
    #[prost(uint32, tag = "4")]
    pub pass_mark: u32,
    /// The lessons, in order.
    #[prost(message, repeated, tag = "5")]
    pub lessons: Vec<Lesson>,
    /// The admin who created it.
    #[prost(string, tag = "6")]
    pub created_by: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "7")]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "8")]
    pub updated_at: String,
    /// Row version, raised by every change.
    #[prost(uint64, tag = "9")]
    pub version: u64,
}

/// One lesson of a course being written.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LessonInput {
    /// Required.
    #[prost(string, optional, tag = "1")]
    pub title: Option<String>,
    /// Default empty.
    #[prost(string, optional, tag = "2")]
    pub content: Option<String>,
    /// On update: the id of the existing lesson this one keeps (its progress stays);
    /// absent: a new lesson.
    #[prost(string, optional, tag = "3")]
    pub id: Option<String>,
}

/// `create_course`, and the body of `update_course`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CourseInput {
    /// Required.
    #[prost(string, optional, tag = "1")]
    pub title: Option<String>,
    /// Default empty.
    #[prost(string, optional, tag = "2")]
    pub description: Option<String>,
    /// Required, at least one, in order.
    #[prost(message, repeated, tag = "3")]
    pub lessons: Vec<LessonInput>,
    /// Whether `lessons` was given at all.
    #[prost(bool, tag = "4")]
    pub lessons_given: bool,
    /// Percent, 0 to 100; default 70.
    #[prost(int64, optional, tag = "5")]
    pub pass_mark: Option<i64>,
}

/// `update_course`: replaces a course's title, description, pass mark and lessons.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateCourse {
    /// Course id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The course as it should be.
    #[prost(message, optional, tag = "2")]
    pub course: Option<CourseInput>,
}

/// `get_course`, `delete_course`, `enroll`, `list_assessments`: one course by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CourseRef {
    /// Course id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `list_courses`: one page of courses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListCourses {
    /// 1-based page (0: 1).
    #[prost(uint32, tag = "1")]
    pub page: u32,
    /// Page size (0: 20; at most 100).
    #[prost(uint32, tag = "2")]
    pub per_page: u32,
}

/// One page of courses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CoursePage {
    /// The courses, newest first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Course>,
    /// Courses in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// One lesson's state for one learner.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LessonProgress {
    /// Lesson id.
    #[prost(string, tag = "1")]
    pub lesson_id: String,
    /// Lesson title.
    #[prost(string, tag = "2")]
    pub title: String,
    /// 1-based place in the course.
    #[prost(uint32, tag = "3")]
    pub position: u32,
    /// Whether the learner completed it.
    #[prost(bool, tag = "4")]
    pub completed: bool,
    /// RFC 3339 UTC; empty when not completed.
    #[prost(string, tag = "5")]
    pub completed_at: String,
}

/// A learner's enrolment in one course, with per-lesson progress.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Enrolment {
    /// Course id.
    #[prost(string, tag = "1")]
    pub course_id: String,
    /// Course title.
    #[prost(string, tag = "2")]
    pub course_title: String,
    /// The learner.
    #[prost(string, tag = "3")]
    pub user_id: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "4")]
    pub enrolled_at: String,
    /// Every lesson of the course, in order.
    #[prost(message, repeated, tag = "5")]
    pub lessons: Vec<LessonProgress>,
    /// Lessons completed.
    #[prost(uint32, tag = "6")]
    pub completed_lessons: u32,
    /// Lessons in the course.
    #[prost(uint32, tag = "7")]
    pub total_lessons: u32,
    /// Whether every lesson is completed.
    #[prost(bool, tag = "8")]
    pub complete: bool,
    /// The certificate, once issued.
    #[prost(string, optional, tag = "9")]
    pub certificate_id: Option<String>,
}

/// `progress`: the caller's enrolments (nothing to ask).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProgressQuery {}

/// The caller's enrolments, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Enrolments {
    /// The enrolments.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Enrolment>,
    /// How many.
    #[prost(uint64, tag = "2")]
    pub total: u64,
}

/// `mark_lesson`: records (or withdraws) the completion of one lesson by the caller.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MarkLesson {
    /// Course id.
    #[prost(string, tag = "1")]
    pub course_id: String,
    /// Required: a lesson of that course.
    #[prost(string, optional, tag = "2")]
    pub lesson_id: Option<String>,
    /// Required: `true` marks it completed, `false` withdraws the mark.
    #[prost(bool, optional, tag = "3")]
    pub completed: Option<bool>,
}

/// One question as written by an admin.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuestionInput {
    /// Required.
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
    /// At least two choices.
    #[prost(string, repeated, tag = "2")]
    pub choices: Vec<String>,
    /// Required: the index of the right choice.
    #[prost(int64, optional, tag = "3")]
    pub answer: Option<i64>,
}

/// `create_assessment`: an assessment of one course.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NewAssessment {
    /// Course id.
    #[prost(string, tag = "1")]
    pub course_id: String,
    /// Required.
    #[prost(string, optional, tag = "2")]
    pub title: Option<String>,
    /// Required, at least one.
    #[prost(message, repeated, tag = "3")]
    pub questions: Vec<QuestionInput>,
    /// Whether `questions` was given at all.
    #[prost(bool, tag = "4")]
    pub questions_given: bool,
    /// Attempts a learner has, 1 to 100; default 3.
    #[prost(int64, optional, tag = "5")]
    pub max_attempts: Option<i64>,
}

/// A question as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Question {
    /// The question.
    #[prost(string, tag = "1")]
    pub text: String,
    /// The choices, in order.
    #[prost(string, repeated, tag = "2")]
    pub choices: Vec<String>,
    /// The right choice's index; only admins are told it.
    #[prost(uint32, optional, tag = "3")]
    pub answer: Option<u32>,
}

/// An assessment as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Assessment {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The course it assesses.
    #[prost(string, tag = "2")]
    pub course_id: String,
    /// Title.
    #[prost(string, tag = "3")]
    pub title: String,
    /// The questions, in order (answers for admins only).
    #[prost(message, repeated, tag = "4")]
    pub questions: Vec<Question>,
    /// Attempts a learner has.
    #[prost(uint32, tag = "5")]
    pub max_attempts: u32,
    /// Attempts the caller has used.
    #[prost(uint32, tag = "6")]
    pub attempts_used: u32,
    /// RFC 3339 UTC.
    #[prost(string, tag = "7")]
    pub created_at: String,
}

/// The assessments of one course, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Assessments {
    /// The assessments.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Assessment>,
    /// How many.
    #[prost(uint64, tag = "2")]
    pub total: u64,
}

/// `submit`: the caller's answers to one assessment.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Submit {
    /// Assessment id.
    #[prost(string, tag = "1")]
    pub assessment_id: String,
    /// One choice index per question, in order.
    #[prost(int64, repeated, tag = "2")]
    pub answers: Vec<i64>,
    /// Whether `answers` was given at all.
    #[prost(bool, tag = "3")]
    pub answers_given: bool,
    /// When given, must be the assessment's course.
    #[prost(string, optional, tag = "4")]
    pub course_id: Option<String>,
}

/// The scored attempt.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Scored {
    /// Percent of questions answered right, rounded down.
    #[prost(uint32, tag = "1")]
    pub score: u32,
    /// Whether the score reaches the course's pass mark.
    #[prost(bool, tag = "2")]
    pub passed: bool,
    /// The caller's certificate of the course, once issued (by this attempt or before).
    #[prost(string, optional, tag = "3")]
    pub certificate_id: Option<String>,
    /// Which attempt this was (1-based).
    #[prost(uint32, tag = "4")]
    pub attempt: u32,
    /// Attempts left.
    #[prost(uint32, tag = "5")]
    pub attempts_left: u32,
}

/// A certificate: a user completed a course and passed its assessment.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Certificate {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The learner.
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// The course.
    #[prost(string, tag = "3")]
    pub course_id: String,
    /// The course's title when the certificate was issued.
    #[prost(string, tag = "4")]
    pub course_title: String,
    /// The passing score.
    #[prost(uint32, tag = "5")]
    pub score: u32,
    /// RFC 3339 UTC.
    #[prost(string, tag = "6")]
    pub issued_at: String,
}

/// `get_certificate`: one certificate by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertificateRef {
    /// Certificate id.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `list_certificates`: the caller's certificates (an admin may name another user).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListCertificates {
    /// Only this user (admins; empty: the caller).
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// Certificates, newest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Certificates {
    /// The certificates.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Certificate>,
    /// How many.
    #[prost(uint64, tag = "2")]
    pub total: u64,
}
