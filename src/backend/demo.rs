//! The offline demo backend: deterministic pictures drawn from the prompt, with simulated
//! latency and partial images, so the whole studio can be tried without a key. Everything it makes
//! is marked as demo output (a DEMO stamp on the picture, `"demo": true` in the sidecar).

use super::demo_art::{self, Stage};
use super::{Backend, BackendEvent};
use crate::api::payload::verify_image;
use crate::api::{ApiError, ApiOutput, CheckedRequest, ErrorKind, ReceivedImage};
use crate::catalog::parse_size;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// The name the demo backend reports.
pub const NAME: &str = "demo";

pub struct DemoBackend {
    latency: Duration,
    partials: u8,
    counter: AtomicU64,
}

impl DemoBackend {
    pub fn new(latency: Duration, partials: u8) -> DemoBackend {
        DemoBackend {
            latency,
            partials: partials.min(3),
            counter: AtomicU64::new(0),
        }
    }
}

/// What the demo needs from a request body.
struct Plan {
    prompt: String,
    n: u32,
    width: u32,
    height: u32,
    format: String,
    compression: Option<u8>,
    partials: u8,
}

fn plan(request: &CheckedRequest, default_partials: u8) -> Plan {
    let b = &request.body;
    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let (width, height) = s("size")
        .as_deref()
        .and_then(parse_size)
        .unwrap_or((1024, 1024));
    let format = match s("output_format").as_deref() {
        Some("jpeg") => "jpeg",
        Some("webp") => "webp",
        _ => "png",
    };
    let partials = if request.stream {
        b.get("partial_images")
            .and_then(|v| v.as_u64())
            .map_or(default_partials, |k| k.min(3) as u8)
    } else {
        0
    };
    Plan {
        prompt: s("prompt").unwrap_or_default(),
        n: b.get("n")
            .and_then(|v| v.as_u64())
            .unwrap_or(1)
            .clamp(1, 10) as u32,
        width: width.clamp(16, 3840),
        height: height.clamp(16, 3840),
        format: format.into(),
        compression: b
            .get("output_compression")
            .and_then(|v| v.as_u64())
            .map(|c| c.min(100) as u8),
        partials,
    }
}

fn failed(message: String) -> ApiError {
    ApiError::new(ErrorKind::BadAnswer, NAME, message)
}

/// The pictures of a demo edit or variation: the inputs checked as a real request's are, then
/// each output drawn from the first picture (resized to the output size) and its mask.
async fn draw_edit(
    files: crate::api::edit::EditFiles,
    prompt: String,
    n: u32,
    size: Option<(u32, u32)>,
    format: String,
    compression: Option<u8>,
) -> Result<(Vec<Bytes>, (u32, u32)), ApiError> {
    tokio::task::spawn_blocking(move || {
        let inputs = crate::api::edit::check_files(&files).map_err(|e| {
            let mut error = ApiError::new(
                ErrorKind::InvalidRequest,
                NAME,
                format!("{}: {}", e.field, e.message),
            );
            error.code = Some(crate::api::error::INPUT_FILE_CODE.to_string());
            error
        })?;
        let load = |path: &std::path::Path| {
            image::ImageReader::open(path)
                .and_then(|r| r.with_guessed_format())
                .map_err(|e| e.to_string())
                .and_then(|r| r.decode().map_err(|e| e.to_string()))
                .map(|i| i.to_rgba8())
                .map_err(|e| {
                    failed(format!(
                        "the demo could not read {}: {e}",
                        crate::sanitize::line(&path.display().to_string())
                    ))
                })
        };
        let first = load(&inputs[0].path)?;
        let (w, h) = size.unwrap_or(first.dimensions());
        let (w, h) = (w.clamp(16, 3840), h.clamp(16, 3840));
        let resize = |img: &image::RgbaImage| {
            if img.dimensions() == (w, h) {
                img.clone()
            } else {
                image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
            }
        };
        let source = resize(&first);
        let mask = match &files.mask {
            Some(path) => Some(resize(&load(path)?)),
            None => None,
        };
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let img = match files.endpoint {
                crate::api::Endpoint::Variations => demo_art::vary(&source, i),
                _ => demo_art::edit(&source, mask.as_ref(), &prompt, i),
            };
            let bytes = demo_art::encode(&img, &format, compression).map_err(|e| {
                failed(format!(
                    "the demo renderer could not encode the picture: {e}"
                ))
            })?;
            out.push(Bytes::from(bytes));
        }
        Ok((out, (w, h)))
    })
    .await
    .map_err(|e| failed(format!("the demo renderer stopped: {e}")))?
}

async fn draw(
    prompt: String,
    index: u32,
    w: u32,
    h: u32,
    stage: Stage,
    format: String,
    compression: Option<u8>,
) -> Result<Bytes, ApiError> {
    tokio::task::spawn_blocking(move || {
        let img = demo_art::render(&prompt, index, w, h, stage);
        demo_art::encode(&img, &format, compression).map(Bytes::from)
    })
    .await
    .map_err(|e| failed(format!("the demo renderer stopped: {e}")))?
    .map_err(|e| {
        failed(format!(
            "the demo renderer could not encode the picture: {e}"
        ))
    })
}

#[async_trait::async_trait]
impl Backend for DemoBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn is_demo(&self) -> bool {
        true
    }

    async fn generate(
        &self,
        request: &CheckedRequest,
        cancel: CancellationToken,
        events: UnboundedSender<BackendEvent>,
    ) -> Result<ApiOutput, ApiError> {
        let p = plan(request, self.partials);
        let serial = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let steps = u32::from(p.partials) + 1;
        let step = self.latency / steps;
        let work = async {
            for k in 0..p.partials {
                tokio::time::sleep(step).await;
                // Partials are small previews; drawing them at full size would waste time.
                let (pw, ph) = ((p.width / 4).max(16), (p.height / 4).max(16));
                let stage = Stage::Partial {
                    index: k,
                    of: p.partials,
                };
                let bytes = draw(p.prompt.clone(), 0, pw, ph, stage, "png".into(), None).await?;
                let _ = events.send(BackendEvent::Partial {
                    index: u32::from(k),
                    bytes,
                });
            }
            tokio::time::sleep(step).await;
            let mut images = Vec::with_capacity(p.n as usize);
            if let Some(files) = &request.edit {
                let size = request
                    .body
                    .get("size")
                    .and_then(|v| v.as_str())
                    .and_then(parse_size);
                let (drawn, _) = draw_edit(
                    files.clone(),
                    p.prompt.clone(),
                    p.n,
                    size,
                    p.format.clone(),
                    p.compression,
                )
                .await?;
                for bytes in drawn {
                    let info = verify_image(&bytes).map_err(failed)?;
                    images.push(ReceivedImage {
                        bytes,
                        info,
                        revised_prompt: None,
                        source: "demo",
                    });
                }
                return Ok::<_, ApiError>(images);
            }
            for i in 0..p.n {
                let bytes = draw(
                    p.prompt.clone(),
                    i,
                    p.width,
                    p.height,
                    Stage::Final,
                    p.format.clone(),
                    p.compression,
                )
                .await?;
                let info = verify_image(&bytes).map_err(failed)?;
                images.push(ReceivedImage {
                    bytes,
                    info,
                    revised_prompt: None,
                    source: "demo",
                });
            }
            Ok::<_, ApiError>(images)
        };
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ApiError::cancelled(NAME)),
            r = work => r,
        };
        let images = result?;
        let size = images
            .first()
            .map(|i| format!("{}x{}", i.info.width, i.info.height))
            .unwrap_or_else(|| format!("{}x{}", p.width, p.height));
        Ok(ApiOutput {
            images,
            usage: None,
            request_id: Some(format!("demo-{serial}")),
            created: Some(chrono::Utc::now().timestamp()),
            attempts: 1,
            size: Some(size),
            quality: None,
            background: None,
            output_format: Some(p.format),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GenerationParams, ProviderRules, request};
    use crate::catalog::Catalog;
    use tokio::sync::mpsc::unbounded_channel;

    fn checked(edit: impl FnOnce(&mut GenerationParams)) -> CheckedRequest {
        let mut p = GenerationParams {
            prompt: "a lighthouse at dusk".into(),
            ..Default::default()
        };
        edit(&mut p);
        request::check(&p, &Catalog::builtin(), &ProviderRules::default()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn honours_size_n_format_and_streams_partials() {
        let demo = DemoBackend::new(Duration::from_millis(900), 2);
        let (tx, mut rx) = unbounded_channel();
        let req = checked(|p| {
            p.size = Some("256x128".into());
            p.output_format = Some("webp".into());
        });
        let mut req_n = req.clone();
        req_n.body.insert("n".into(), 3.into());
        let out = demo
            .generate(&req_n, CancellationToken::new(), tx.clone())
            .await
            .unwrap();
        assert_eq!(out.images.len(), 3);
        for img in &out.images {
            assert_eq!(
                (img.info.format, img.info.width, img.info.height),
                ("webp", 256, 128)
            );
        }
        assert_ne!(out.images[0].bytes, out.images[1].bytes);

        let streamed = checked(|p| {
            p.stream = true;
            p.partial_images = Some(3);
            p.size = Some("256x256".into());
        });
        while rx.try_recv().is_ok() {}
        let out = demo
            .generate(&streamed, CancellationToken::new(), tx)
            .await
            .unwrap();
        assert_eq!(out.images.len(), 1);
        let mut partials = 0;
        while let Ok(ev) = rx.try_recv() {
            if let BackendEvent::Partial { bytes, .. } = ev {
                verify_image(&bytes).unwrap();
                partials += 1;
            }
        }
        assert_eq!(partials, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn deterministic_and_prompt_dependent() {
        let demo = DemoBackend::new(Duration::ZERO, 0);
        let (tx, _rx) = unbounded_channel();
        let small = |prompt: &'static str| {
            checked(move |p| {
                p.prompt = prompt.into();
                p.size = Some("64x64".into());
            })
        };
        let a1 = demo
            .generate(&small("red fox"), CancellationToken::new(), tx.clone())
            .await
            .unwrap();
        let a2 = demo
            .generate(&small("red fox"), CancellationToken::new(), tx.clone())
            .await
            .unwrap();
        let b = demo
            .generate(&small("夜晚的海边小镇"), CancellationToken::new(), tx)
            .await
            .unwrap();
        assert_eq!(a1.images[0].bytes, a2.images[0].bytes);
        assert_ne!(a1.images[0].bytes, b.images[0].bytes);
    }

    #[tokio::test]
    async fn edits_repaint_the_masked_area_and_variations_recolour() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.png");
        let mask = dir.path().join("mask.png");
        let grey = image::RgbaImage::from_pixel(64, 64, image::Rgba([128, 128, 128, 255]));
        grey.save(&src).unwrap();
        // Transparent (edit here) in the left half only.
        let m = image::RgbaImage::from_fn(64, 64, |x, _| {
            image::Rgba([0, 0, 0, if x < 32 { 0 } else { 255 }])
        });
        m.save(&mask).unwrap();
        let demo = DemoBackend::new(Duration::ZERO, 0);
        let (tx, _rx) = unbounded_channel();
        let edit = checked(|p| {
            p.images = vec![crate::api::InputImage::file(&src)];
            p.mask = Some(crate::api::InputImage::file(&mask));
        });
        let a = demo
            .generate(&edit, CancellationToken::new(), tx.clone())
            .await
            .unwrap();
        let b = demo
            .generate(&edit, CancellationToken::new(), tx.clone())
            .await
            .unwrap();
        assert_eq!(a.images[0].bytes, b.images[0].bytes, "deterministic");
        let out = image::load_from_memory(&a.images[0].bytes)
            .unwrap()
            .to_rgba8();
        assert_eq!(
            out.dimensions(),
            (64, 64),
            "the input's size when none is asked"
        );
        // Outside the mask (and away from the DEMO stamp) the source is kept exactly...
        assert_eq!(out.get_pixel(40, 5).0, [128, 128, 128, 255]);
        // ...inside it, repainted.
        let changed = (0..32)
            .flat_map(|x| (0..64).map(move |y| (x, y)))
            .filter(|(x, y)| out.get_pixel(*x, *y).0 != [128, 128, 128, 255])
            .count();
        assert!(changed > 32 * 64 / 2, "only {changed} pixels repainted");

        let vary = {
            let mut p = GenerationParams {
                prompt: String::new(),
                model: "dall-e-2".into(),
                images: vec![crate::api::InputImage::file(&src)],
                variation: true,
                n: 2,
                ..Default::default()
            };
            p.size = None;
            let rules = ProviderRules {
                variations: true,
                ..Default::default()
            };
            request::check(&p, &Catalog::builtin(), &rules).unwrap()
        };
        let v = demo
            .generate(&vary, CancellationToken::new(), tx)
            .await
            .unwrap();
        assert_eq!(v.images.len(), 2);
        assert_ne!(v.images[0].bytes, v.images[1].bytes);

        // A missing input is refused as a real request would be, nothing made.
        let (tx, _rx) = unbounded_channel();
        let gone =
            checked(|p| p.images = vec![crate::api::InputImage::file(dir.path().join("gone.png"))]);
        let e = demo
            .generate(&gone, CancellationToken::new(), tx)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_at_once() {
        let demo = DemoBackend::new(Duration::from_secs(60), 2);
        let (tx, _rx) = unbounded_channel();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            c2.cancel();
        });
        let start = tokio::time::Instant::now();
        let err = demo
            .generate(&checked(|_| {}), cancel, tx)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
