//! The scale benchmark's run (`warm_transfer_dev::bench::scale`) at a smoke
//! size: its zero counts asserted, never its timings.

use warm_transfer_dev::bench::scale::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_calls_at_once_strand_nobody_and_agree_with_twilio() {
    let report = scale::run(&Options::smoke(10), None).await.unwrap();
    let all = format!("{report:#?}");
    // Every ending and both kinds of faulty callbacks were in the run.
    assert_eq!(report.endings.len(), 5, "{all}");
    assert_eq!(report.inbound, 2, "two customers called in: {all}");
    assert!(report.duplicated > 0 && report.reordered > 0, "{all}");
    assert_eq!(report.unfinished, Vec::<String>::new(), "{all}");
    assert_eq!(report.unexpected, Vec::<String>::new(), "{all}");
    assert_eq!(report.stranded, Vec::<String>::new(), "{all}");
    assert_eq!(
        (report.webhook_5xx, report.webhook_unanswered),
        (0, 0),
        "{all}"
    );
    assert_eq!(report.front_end_5xx, 0, "{all}");
    assert_eq!(report.disagreements, Vec::<String>::new(), "{all}");
    // Includes the simulator's own check of its situation tracking.
    assert_eq!(report.contract_violations, Vec::<String>::new(), "{all}");
    assert!(report.zero_counts_hold());
}
