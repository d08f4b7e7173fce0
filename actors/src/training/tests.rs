//! The `training` service against SQLite (and PostgreSQL when `TROUPE_TEST_PG` is set):
//! admin-only writes, enrolment and progress, scoring and attempt limits, the certificate
//! issued once, and bad input that writes nothing.

use std::sync::Arc;

use troupe_proto::mesh::Caller;

use super::*;
use crate::events::Recorder;
use crate::mesh::service::call_op;
use crate::store::tests::{on_each_backend, sqlite};

fn training(store: Store) -> (Training, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    (Training::new(store, events.clone()), events)
}

fn learner() -> Who {
    Who {
        user_id: format!("u-{}", uuid::Uuid::new_v4().simple()),
        admin: false,
    }
}

fn admin() -> Who {
    Who {
        user_id: format!("a-{}", uuid::Uuid::new_v4().simple()),
        admin: true,
    }
}

fn course_input(lessons: usize) -> CourseInput {
    CourseInput {
        title: Some("Safety basics".into()),
        description: Some("what every new starter learns".into()),
        lessons: (1..=lessons)
            .map(|i| LessonInput {
                title: Some(format!("lesson {i}")),
                content: Some(format!("content {i}")),
                id: None,
            })
            .collect(),
        lessons_given: true,
        pass_mark: None,
    }
}

fn quiz(course_id: &str) -> NewAssessment {
    NewAssessment {
        course_id: course_id.to_string(),
        title: Some("final quiz".into()),
        questions: (0..4)
            .map(|i| QuestionInput {
                text: Some(format!("question {i}")),
                choices: vec!["a".into(), "b".into(), "c".into()],
                answer: Some(i % 3),
            })
            .collect(),
        questions_given: true,
        max_attempts: None,
    }
}

/// The right answers of [`quiz`], with the first `wrong` of them wrong.
fn answers(id: &str, wrong: usize) -> Submit {
    Submit {
        assessment_id: id.to_string(),
        answers: (0..4)
            .map(|i: i64| if i < wrong as i64 { (i + 1) % 3 } else { i % 3 })
            .collect(),
        answers_given: true,
        course_id: None,
    }
}

fn field_keys(e: &MeshError) -> Vec<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).expect("details json");
    let mut keys: Vec<String> = details["fields"]
        .as_object()
        .expect("fields object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

async fn complete_all(svc: &Training, who: &Who, course: &Course) -> Enrolment {
    let mut last = None;
    for l in &course.lessons {
        let m = MarkLesson {
            course_id: course.id.clone(),
            lesson_id: Some(l.id.clone()),
            completed: Some(true),
        };
        last = Some(svc.mark_lesson(who, m).await.unwrap());
    }
    last.expect("a lesson")
}

#[tokio::test]
async fn a_learner_completes_passes_and_gets_one_certificate() {
    on_each_backend(|store, _| async move {
        let (svc, events) = training(store);
        let (boss, ann) = (admin(), learner());
        let course = svc.create_course(&boss, course_input(3)).await.unwrap();
        assert_eq!(course.pass_mark, 70);
        let positions: Vec<u32> = course.lessons.iter().map(|l| l.position).collect();
        assert_eq!(positions, [1, 2, 3]);
        let quiz = svc
            .create_assessment(&boss, quiz(&course.id))
            .await
            .unwrap();
        assert_eq!(quiz.questions[1].answer, Some(1), "admins see answers");

        let seen = svc
            .list_assessments(
                &ann,
                &CourseRef {
                    id: course.id.clone(),
                },
            )
            .await
            .unwrap();
        assert!(seen.items[0].questions.iter().all(|q| q.answer.is_none()));

        let e = svc.submit(&ann, answers(&quiz.id, 0)).await.unwrap_err();
        assert_eq!(e.code, Code::FailedPrecondition, "not enrolled");
        let r = CourseRef {
            id: course.id.clone(),
        };
        let enrolled = svc.enroll(&ann, &r).await.unwrap();
        assert_eq!((enrolled.total_lessons, enrolled.complete), (3, false));
        svc.enroll(&ann, &r).await.unwrap();

        // Passed before the lessons are done: no certificate yet.
        let failed = svc.submit(&ann, answers(&quiz.id, 2)).await.unwrap();
        assert_eq!(
            (failed.score, failed.passed, failed.attempt),
            (50, false, 1)
        );
        let passed = svc.submit(&ann, answers(&quiz.id, 1)).await.unwrap();
        assert_eq!(
            (passed.score, passed.passed, passed.attempts_left),
            (75, true, 1)
        );
        assert_eq!(passed.certificate_id, None);

        // The last lesson completes the course and issues it.
        let done = complete_all(&svc, &ann, &course).await;
        assert!(done.complete);
        let cert_id = done.certificate_id.clone().expect("issued");
        let again = svc.submit(&ann, answers(&quiz.id, 0)).await.unwrap();
        assert_eq!(again.certificate_id.as_deref(), Some(cert_id.as_str()));
        let e = svc.submit(&ann, answers(&quiz.id, 0)).await.unwrap_err();
        assert_eq!(e.code, Code::FailedPrecondition, "three attempts used");

        let certs = svc
            .list_certificates(&ann, &ListCertificates::default())
            .await
            .unwrap();
        assert_eq!(certs.total, 1);
        assert_eq!(
            (certs.items[0].score, certs.items[0].id.as_str()),
            (75, cert_id.as_str())
        );
        let r = CertificateRef {
            id: cert_id.clone(),
        };
        assert_eq!(
            svc.get_certificate(&learner(), &r).await.unwrap_err().code,
            Code::NotFound
        );
        assert_eq!(
            svc.get_certificate(&boss, &r).await.unwrap().user_id,
            ann.user_id
        );

        let kinds: Vec<String> = events
            .events()
            .into_iter()
            .filter(|e| e.user_id.as_deref() == Some(ann.user_id.as_str()))
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "training.enrolled",
                "training.lesson_completed",
                "training.lesson_completed",
                "training.lesson_completed",
                "training.certificate_issued",
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn racing_passing_submits_issue_one_certificate() {
    on_each_backend(|store, _| async move {
        let (svc, events) = training(store.clone());
        let other = Training::new(store, events.clone());
        let (boss, ann) = (admin(), learner());
        let course = svc.create_course(&boss, course_input(2)).await.unwrap();
        let mut q = quiz(&course.id);
        q.max_attempts = Some(10);
        let quiz = svc.create_assessment(&boss, q).await.unwrap();
        svc.enroll(
            &ann,
            &CourseRef {
                id: course.id.clone(),
            },
        )
        .await
        .unwrap();
        complete_all(&svc, &ann, &course).await;
        let (a, b) = tokio::join!(
            svc.submit(&ann, answers(&quiz.id, 0)),
            other.submit(&ann, answers(&quiz.id, 0))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.certificate_id.is_some());
        assert_eq!(a.certificate_id, b.certificate_id);
        assert_ne!(a.attempt, b.attempt);
        let issued = events
            .events()
            .into_iter()
            .filter(|e| e.kind == kinds::TRAINING_CERTIFICATE_ISSUED)
            .count();
        assert_eq!(issued, 1);
        assert_eq!(
            svc.list_certificates(&ann, &ListCertificates::default())
                .await
                .unwrap()
                .total,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn only_admins_write_courses_and_assessments() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = training(store);
    let (boss, ann) = (admin(), learner());
    let e = svc.create_course(&ann, course_input(1)).await.unwrap_err();
    assert_eq!(e.code, Code::PermissionDenied);
    let course = svc.create_course(&boss, course_input(2)).await.unwrap();
    let u = UpdateCourse {
        id: course.id.clone(),
        course: Some(course_input(1)),
    };
    assert_eq!(
        svc.update_course(&ann, u).await.unwrap_err().code,
        Code::PermissionDenied
    );
    let r = CourseRef {
        id: course.id.clone(),
    };
    assert_eq!(
        svc.delete_course(&ann, &r).await.unwrap_err().code,
        Code::PermissionDenied
    );
    assert_eq!(
        svc.create_assessment(&ann, quiz(&course.id))
            .await
            .unwrap_err()
            .code,
        Code::PermissionDenied
    );
    assert_eq!(svc.get_course(&r).await.unwrap(), course, "unchanged");
}

#[tokio::test]
async fn updating_a_course_keeps_named_lessons_and_their_progress() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = training(store);
    let (boss, ann) = (admin(), learner());
    let course = svc.create_course(&boss, course_input(3)).await.unwrap();
    let r = CourseRef {
        id: course.id.clone(),
    };
    svc.enroll(&ann, &r).await.unwrap();
    complete_all(&svc, &ann, &course).await;
    // Keep lesson 2 (now first), drop 1 and 3, add a new one.
    let mut input = course_input(2);
    input.lessons[0].id = Some(course.lessons[1].id.clone());
    input.pass_mark = Some(90);
    let u = UpdateCourse {
        id: course.id.clone(),
        course: Some(input),
    };
    let changed = svc.update_course(&boss, u).await.unwrap();
    assert_eq!(changed.lessons[0].id, course.lessons[1].id);
    assert_eq!((changed.pass_mark, changed.version), (90, 2));
    let p = svc.progress(&ann).await.unwrap();
    assert_eq!(
        (p.items[0].completed_lessons, p.items[0].total_lessons),
        (1, 2)
    );

    let mut foreign = course_input(1);
    foreign.lessons[0].id = Some("not-a-lesson".into());
    let u = UpdateCourse {
        id: course.id.clone(),
        course: Some(foreign),
    };
    let e = svc.update_course(&boss, u).await.unwrap_err();
    assert_eq!(field_keys(&e), ["lessons"]);

    let gone = svc.delete_course(&boss, &r).await.unwrap();
    assert_eq!(gone.version, 2);
    assert_eq!(svc.get_course(&r).await.unwrap_err().code, Code::NotFound);
    assert_eq!(svc.progress(&ann).await.unwrap().total, 0);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let (store, _dir) = sqlite().await;
    let (svc, events) = training(store);
    let (boss, ann) = (admin(), learner());
    let bad = CourseInput {
        title: None,
        lessons_given: false,
        pass_mark: Some(101),
        ..CourseInput::default()
    };
    let e = svc.create_course(&boss, bad).await.unwrap_err();
    assert_eq!(field_keys(&e), ["lessons", "pass_mark", "title"]);
    let mut empty = course_input(0);
    empty.title = Some(" ".into());
    assert_eq!(
        field_keys(&svc.create_course(&boss, empty).await.unwrap_err()),
        ["lessons", "title"]
    );
    let mut untitled = course_input(2);
    untitled.lessons[1].title = None;
    assert_eq!(
        field_keys(&svc.create_course(&boss, untitled).await.unwrap_err()),
        ["lessons"]
    );
    assert_eq!(
        svc.list_courses(&ListCourses::default())
            .await
            .unwrap()
            .total,
        0
    );

    let course = svc.create_course(&boss, course_input(1)).await.unwrap();
    let other = svc.create_course(&boss, course_input(1)).await.unwrap();
    let mut q = quiz(&course.id);
    q.questions[2].answer = Some(3);
    q.max_attempts = Some(0);
    assert_eq!(
        field_keys(&svc.create_assessment(&boss, q).await.unwrap_err()),
        ["max_attempts", "questions"]
    );
    assert_eq!(
        svc.create_assessment(&boss, quiz("no-such-course"))
            .await
            .unwrap_err()
            .code,
        Code::NotFound
    );
    let quiz = svc
        .create_assessment(&boss, quiz(&course.id))
        .await
        .unwrap();
    svc.enroll(
        &ann,
        &CourseRef {
            id: course.id.clone(),
        },
    )
    .await
    .unwrap();

    let mut short = answers(&quiz.id, 0);
    short.answers.pop();
    assert_eq!(
        field_keys(&svc.submit(&ann, short).await.unwrap_err()),
        ["answers"]
    );
    let mut out_of_range = answers(&quiz.id, 0);
    out_of_range.answers[0] = 7;
    assert_eq!(
        field_keys(&svc.submit(&ann, out_of_range).await.unwrap_err()),
        ["answers"]
    );
    let mut elsewhere = answers(&quiz.id, 0);
    elsewhere.course_id = Some(other.id.clone());
    assert_eq!(
        field_keys(&svc.submit(&ann, elsewhere).await.unwrap_err()),
        ["course_id"]
    );
    assert_eq!(
        svc.submit(&ann, answers("no-such-quiz", 0))
            .await
            .unwrap_err()
            .code,
        Code::NotFound
    );
    let m = MarkLesson {
        course_id: course.id.clone(),
        lesson_id: Some(other.lessons[0].id.clone()),
        completed: Some(true),
    };
    assert_eq!(
        field_keys(&svc.mark_lesson(&ann, m).await.unwrap_err()),
        ["lesson_id"]
    );
    let m = MarkLesson {
        course_id: course.id.clone(),
        ..MarkLesson::default()
    };
    assert_eq!(
        field_keys(&svc.mark_lesson(&ann, m).await.unwrap_err()),
        ["completed", "lesson_id"]
    );
    let seen = svc
        .list_assessments(
            &ann,
            &CourseRef {
                id: course.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(seen.items[0].attempts_used, 0, "no attempt recorded");
    let p = svc.progress(&ann).await.unwrap();
    assert_eq!(p.items[0].completed_lessons, 0);
    assert_eq!(events.events().len(), 1, "only the enrolment published");
}

#[tokio::test]
async fn ops_need_a_caller() {
    let (store, _dir) = sqlite().await;
    let (svc, _) = training(store);
    let e = call_op(&svc, &ops::LIST_COURSES, ListCourses::default(), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Unauthenticated);
    let caller = Caller {
        user_id: "u1".into(),
        roles: vec!["admin".into()],
        session_id: "s".into(),
    };
    let course = call_op(&svc, &ops::CREATE_COURSE, course_input(1), Some(caller))
        .await
        .unwrap();
    assert_eq!(course.created_by, "u1");
}

#[tokio::test]
async fn a_last_lesson_racing_a_passing_submit_still_issues_the_certificate() {
    on_each_backend(|store, _| async move {
        let (svc, events) = training(store.clone());
        let other = Training::new(store, events.clone());
        let boss = admin();
        for _ in 0..5 {
            let ann = learner();
            let course = svc.create_course(&boss, course_input(2)).await.unwrap();
            let quiz = svc
                .create_assessment(&boss, quiz(&course.id))
                .await
                .unwrap();
            svc.enroll(
                &ann,
                &CourseRef {
                    id: course.id.clone(),
                },
            )
            .await
            .unwrap();
            let mark = |lesson: usize| MarkLesson {
                course_id: course.id.clone(),
                lesson_id: Some(course.lessons[lesson].id.clone()),
                completed: Some(true),
            };
            svc.mark_lesson(&ann, mark(0)).await.unwrap();
            let (marked, scored) = tokio::join!(
                svc.mark_lesson(&ann, mark(1)),
                other.submit(&ann, answers(&quiz.id, 0))
            );
            let (marked, scored) = (marked.unwrap(), scored.unwrap());
            let cert = marked.certificate_id.or(scored.certificate_id);
            assert!(cert.is_some(), "neither issued the certificate");
            let certs = svc
                .list_certificates(&ann, &ListCertificates::default())
                .await
                .unwrap();
            assert_eq!(certs.total, 1);
        }
    })
    .await;
}
