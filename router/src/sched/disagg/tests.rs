use super::*;
use crate::hashing::{ExternalHash, hash_prompt};
use crate::index::{KvEvent, KvEventData, StoredBlock};
use crate::sched::DynamoCost;

fn store(router: &mut KvRouter<impl Policy>, worker: WorkerId, tokens: &[u32]) {
    let prompt = hash_prompt(tokens, 64, None);
    let blocks = prompt
        .blocks
        .iter()
        .zip(&prompt.sequence)
        .map(|(t, s)| StoredBlock {
            external: ExternalHash(s.0),
            tokens: *t,
        })
        .collect();
    router.apply_event(
        worker,
        &KvEvent {
            tier: crate::StorageTier::Device,
            event_id: 0,
            data: KvEventData::Stored {
                parent: None,
                blocks,
            },
        },
    );
}

fn pools(rule: LocalPrefillRule) -> DisaggRouter<DynamoCost, PredictedTtft> {
    let model = PerfModel::default();
    let mut prefill = KvRouter::new(DynamoCost::new(64, 1), 64);
    let mut decode = KvRouter::new(PredictedTtft::new(model, 64, 1), 64);
    for id in 0..2 {
        prefill.add_worker(WorkerId::new(id));
        decode.add_worker(WorkerId::new(10 + id));
    }
    DisaggRouter::new(prefill, decode, rule, model)
}

#[test]
fn prefill_goes_to_the_cached_prefill_worker_and_decode_to_the_cached_decode_worker() {
    let tokens: Vec<u32> = (0..8_192).collect();
    let prompt = hash_prompt(&tokens, 64, None);
    let mut router = pools(LocalPrefillRule::Never);
    store(&mut router.prefill, WorkerId::new(1), &tokens[..4_096]);
    store(&mut router.decode, WorkerId::new(11), &tokens[..2_048]);
    let view = RequestView {
        id: RequestId(1),
        prompt_tokens: 8_192,
        sequence: &prompt.sequence,
        expected_output_tokens: None,
    };
    let d = router.route(&view, 0.0).unwrap();
    let p = d.prefill.unwrap();
    assert_eq!((p.worker, p.cached_blocks), (WorkerId::new(1), 64));
    assert_eq!(d.decode.worker, WorkerId::new(11), "less to transfer");
    assert_eq!(
        router.prefill.loads.load(WorkerId::new(1)).prefill_tokens,
        4_096
    );
    assert_eq!(
        router.decode.loads.load(WorkerId::new(11)).prefill_tokens,
        0
    );
    router.on_first_token(RequestId(1), 1.0);
    assert_eq!(router.prefill.loads.in_flight(), 0);
    router.on_finish(RequestId(1), 2.0);
    assert_eq!(router.decode.loads.in_flight(), 0);
}

#[test]
fn dynamo_rule_bypasses_only_short_mostly_cached_prompts() {
    let tokens: Vec<u32> = (0..8_192).collect();
    let prompt = hash_prompt(&tokens, 64, None);
    let mut router = pools(LocalPrefillRule::DYNAMO_DEFAULT);
    store(&mut router.decode, WorkerId::new(10), &tokens[..6_400]);
    let view = RequestView {
        id: RequestId(1),
        prompt_tokens: 8_192,
        sequence: &prompt.sequence,
        expected_output_tokens: None,
    };
    // Effective ISL 1,792 < 2,048 and 0.22 < 0.7: local.
    assert!(router.route(&view, 0.0).unwrap().prefill.is_none());
    let cold = RequestView {
        id: RequestId(2),
        prompt_tokens: 4_096,
        sequence: &prompt.sequence[64..],
        expected_output_tokens: None,
    };
    assert!(router.route(&cold, 0.0).unwrap().prefill.is_some());
}

#[test]
fn model_rule_prefills_locally_when_the_prefill_pool_is_backed_up() {
    let tokens: Vec<u32> = (0..4_096).collect();
    let prompt = hash_prompt(&tokens, 64, None);
    let mut router = pools(LocalPrefillRule::Model { stall_weight: 0.1 });
    let view = |id| RequestView {
        id: RequestId(id),
        prompt_tokens: 4_096,
        sequence: &prompt.sequence,
        expected_output_tokens: None,
    };
    // Decode workers are busy decoding, so a local prefill would stall 40 requests.
    for worker in router.decode.workers().to_vec() {
        for r in 0..40 {
            router
                .decode
                .loads
                .on_route(RequestId(1_000 * worker.id + r), worker, &[], 0);
        }
    }
    let first = router.route(&view(1), 0.0).unwrap();
    assert!(
        first.prefill.is_some(),
        "idle prefill pool: remote, {first:?}"
    );
    // Pile work onto both prefill workers.
    for worker in router.prefill.workers().to_vec() {
        router
            .prefill
            .loads
            .on_route(RequestId(100 + worker.id), worker, &[], 400_000);
    }
    let busy = router.route(&view(2), 0.0).unwrap();
    assert!(
        busy.prefill.is_none() && busy.local_ttft_s < busy.remote_ttft_s,
        "{busy:?}"
    );
}
