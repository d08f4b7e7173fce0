//! The `images` service against SQLite (always) and PostgreSQL (when `TROUPE_TEST_PG` is
//! set), through [`Service::handle`] as the mesh calls it.

use std::time::Duration;

use troupe_proto::mesh::Caller;

use super::*;
use crate::mesh::service::call_op as call;
use crate::store::tests::on_each_backend;

fn png(len: usize) -> Bytes {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    v.resize(len.max(v.len()), 7);
    Bytes::from(v)
}

fn caller(user_id: &str) -> Option<Caller> {
    Some(Caller {
        user_id: user_id.to_string(),
        roles: vec!["user".into()],
        session_id: "s".into(),
    })
}

fn upload(filename: &str, data: Bytes) -> UploadRequest {
    UploadRequest {
        filename: filename.to_string(),
        data,
    }
}

#[tokio::test]
async fn an_upload_round_trips_with_its_detected_type_and_clean_name() {
    on_each_backend(|store, _| async move {
        let svc = Images::new(store, 1024 * 1024);
        let owner = uuid::Uuid::new_v4().to_string();
        let data = png(300_000);
        let image: Image = call(
            &svc,
            &UPLOAD,
            upload("../x/holiday pic.php", data.clone()),
            caller(&owner),
        )
        .await
        .expect("upload");
        assert_eq!(image.content_type, "image/png");
        assert_eq!(image.filename, "holiday_pic.php.png");
        assert_eq!(image.size, 300_000);
        assert_eq!(image.owner, owner);
        let got: ImageData = call(
            &svc,
            &GET,
            GetRequest {
                id: image.id.clone(),
            },
            None,
        )
        .await
        .expect("get");
        assert_eq!(got.image.as_ref(), Some(&image));
        assert_eq!(got.data, data);
    })
    .await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    on_each_backend(|store, _| async move {
        let svc = Images::new(store, 1000);
        let owner = uuid::Uuid::new_v4().to_string();
        let cases: [(UploadRequest, Option<Caller>, Code); 4] = [
            (upload("a.png", png(100)), None, Code::Unauthenticated),
            (
                upload("a.png", Bytes::new()),
                caller(&owner),
                Code::InvalidArgument,
            ),
            (
                upload("a.png", Bytes::from_static(b"#!/bin/sh\nrm -rf /\n")),
                caller(&owner),
                Code::InvalidArgument,
            ),
            (
                upload("a.png", png(1001)),
                caller(&owner),
                Code::ResourceExhausted,
            ),
        ];
        for (req, who, code) in cases {
            let e = call::<_, _, Image>(&svc, &UPLOAD, req, who)
                .await
                .unwrap_err();
            assert_eq!(e.code, code, "{e}");
        }
        let page: ImagePage = call(
            &svc,
            &LIST,
            ListRequest {
                owner: owner.clone(),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("list");
        assert_eq!(page.total, 0);
        let e = call::<_, _, ImageData>(
            &svc,
            &GET,
            GetRequest {
                id: uuid::Uuid::new_v4().to_string(),
            },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn lists_page_newest_first_per_owner_or_all() {
    on_each_backend(|store, own_db| async move {
        let svc = Images::new(store, 1024);
        let (a, b) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        let mut ids = Vec::new();
        for i in 0..3 {
            let image: Image = call(
                &svc,
                &UPLOAD,
                upload(&format!("a{i}.png"), png(64)),
                caller(&a),
            )
            .await
            .expect("upload a");
            ids.push(image.id);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let _: Image = call(&svc, &UPLOAD, upload("b.png", png(64)), caller(&b))
            .await
            .expect("upload b");
        let page: ImagePage = call(
            &svc,
            &LIST,
            ListRequest {
                owner: a.clone(),
                page: 1,
                per_page: 2,
            },
            None,
        )
        .await
        .expect("list");
        assert_eq!(page.total, 3);
        let got: Vec<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
        assert!(page.items.iter().all(|i| i.owner == a));
        let page: ImagePage = call(
            &svc,
            &LIST,
            ListRequest {
                owner: a.clone(),
                page: 2,
                per_page: 2,
            },
            None,
        )
        .await
        .expect("list page 2");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, ids[0]);
        let all: ImagePage = call(&svc, &LIST, ListRequest::default(), None)
            .await
            .expect("list all");
        if own_db {
            assert_eq!(all.total, 4);
        } else {
            assert!(all.total >= 4);
        }
        let e = call::<_, _, ImagePage>(
            &svc,
            &LIST,
            ListRequest {
                per_page: 1000,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    })
    .await;
}

/// `[quotas] image_bytes_per_user`: an upload that would take its owner past the quota is
/// refused (`ResourceExhausted` naming the quota, with the size reason that HTTP answers
/// 413) and stores nothing; another owner is not affected.
#[tokio::test]
async fn uploads_past_the_owners_byte_quota_are_refused_and_store_nothing() {
    on_each_backend(|store, _| async move {
        let svc = Images::new(store, 1024 * 1024).with_quota(250_000);
        let owner = uuid::Uuid::new_v4().to_string();
        let other = uuid::Uuid::new_v4().to_string();
        for name in ["a.png", "b.png"] {
            let _: Image = call(&svc, &UPLOAD, upload(name, png(100_000)), caller(&owner))
                .await
                .expect("within the quota");
        }
        let refused: Result<Image, MeshError> =
            call(&svc, &UPLOAD, upload("c.png", png(100_000)), caller(&owner)).await;
        let e = refused.expect_err("a third would make 300,000 bytes");
        assert_eq!(e.code, Code::ResourceExhausted);
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["quota"], "image_bytes_per_user");
        assert_eq!(d["limit"], 250_000);
        assert_eq!(d["reason"], crate::auth::limits::OVER_SIZE_QUOTA);
        let page: ImagePage = call(
            &svc,
            &LIST,
            ListRequest {
                owner: owner.clone(),
                ..ListRequest::default()
            },
            caller(&owner),
        )
        .await
        .expect("list");
        assert_eq!(page.total, 2, "the refused upload stored nothing");
        // A smaller one still fits.
        let _: Image = call(&svc, &UPLOAD, upload("d.png", png(50_000)), caller(&owner))
            .await
            .expect("250,000 bytes exactly");
        let _: Image = call(&svc, &UPLOAD, upload("e.png", png(200_000)), caller(&other))
            .await
            .expect("another owner has a quota of its own");
    })
    .await;
}

/// The byte quota when one owner's uploads race: 24 at once, room for 5. Each counts the
/// others that committed before it (the owner's quota lock), so exactly 5 are stored; on
/// PostgreSQL without the lock, uploads counting at the same time all got in.
#[tokio::test]
async fn racing_uploads_of_one_owner_store_exactly_the_quota() {
    on_each_backend(|store, _| async move {
        let svc = Images::new(store, 1024 * 1024).with_quota(5 * 10_000);
        let owner = uuid::Uuid::new_v4().to_string();
        let uploads = (0..24).map(|i| {
            let (svc, owner) = (svc.clone(), owner.clone());
            tokio::spawn(async move {
                let name = format!("{i}.png");
                let r: Result<Image, MeshError> =
                    call(&svc, &UPLOAD, upload(&name, png(10_000)), caller(&owner)).await;
                r
            })
        });
        let answers = futures_util::future::join_all(uploads).await;
        let stored = answers
            .iter()
            .filter(|a| a.as_ref().expect("task").is_ok())
            .count();
        for a in &answers {
            if let Err(e) = a.as_ref().expect("task") {
                assert_eq!(e.code, Code::ResourceExhausted, "{e:?}");
            }
        }
        assert_eq!(stored, 5, "uploads admitted");
        let page: ImagePage = call(
            &svc,
            &LIST,
            ListRequest {
                owner: owner.clone(),
                ..ListRequest::default()
            },
            caller(&owner),
        )
        .await
        .expect("list");
        assert_eq!(page.total, 5, "images stored");
    })
    .await;
}
