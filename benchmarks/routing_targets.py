"""Issue 11 and 21 target checks from routing_quality results JSON (means over seeds):

    python benchmarks/routing_targets.py benchmarks/results/routing_quality*.json

Per setting: SCOPE's best AUC against the best baseline's; held-out settings (every trio): AUROC and
level bias per held-out model; ``scope-default``'s one operating point (the default knob) against
BSM, and the cheapest point of its knob sweep within 1 point of BSM (what any one setting could reach);
ood: every draw against the prior.
"""
import json
import sys

BASE = {"logreg", "mlp", "knn-embed", "mf", "prior"}
for path in sys.argv[1:]:
    d = json.load(open(path))
    S = d["settings"]
    print(f"== {d['dataset']} seeds {d['seeds']}{' (validation parts)' if d.get('validation') else ''}")
    seen_best = None
    for name, res in S.items():
        rs = res["routers"]
        sc = {n: r for n, r in rs.items() if r["kind"] == "scope"}
        bl = {n: r for n, r in rs.items() if n in BASE}
        bs, bb = max(sc, key=lambda n: sc[n]["auc"]), max(bl, key=lambda n: bl[n]["auc"])
        if name == "seen":
            seen_best = sc[bs]["auc"]
        diff = 100 * (sc[bs]["auc"] - bl[bb]["auc"])
        line = (f"{name:<18} best SCOPE {bs} {sc[bs]['auc']:.4f} | best baseline {bb} {bl[bb]['auc']:.4f} | "
                f"diff {diff:+.2f} pt")
        if res.get("unseen_models"):
            gap = 100 * (seen_best - sc[bs]["auc"]) if seen_best else float("nan")
            line += f" {'(>= +1: met)' if diff >= 1 else '(>= +1: MISSED)'}"
            line += f" | AUROC {sc[bs].get('auroc') or float('nan'):.3f} | gap to seen {gap:.2f} pt"
            pm = sc.get("scope-default", sc[bs]).get("per_model", {})
            if pm:
                line += " | scope-default bias " + " ".join(f"{v['bias']:+.3f}" for v in pm.values())
        print(line)
        dflt = rs.get("scope-default")
        if dflt and dflt.get("default_accuracy") is not None:
            gap_pt, share = 100 * dflt["default_gap_to_bsm"], 100 * dflt["default_cost_share"]
            verdict = ""
            if name == "seen":
                verdict = " (target >= -1 pt at <= 70%: " + ("met)" if gap_pt >= -1 and share <= 70 else "MISSED)")
            print(f"{'':<18} scope-default's default knob: acc {dflt['default_accuracy']:.4f} ({gap_pt:+.2f} pt vs BSM) "
                  f"at {share:.0f}% of BSM's cost{verdict}")
            if dflt.get("cost_share_within_1pt") is not None:  # the best any one knob setting reaches
                print(f"{'':<18} its sweep's cheapest point within 1 pt of BSM: {100 * dflt['cost_share_within_1pt']:.0f}% "
                      f"of BSM's cost ({dflt.get('cost_share_within_1pt_seeds', len(d['seeds']))} of {len(d['seeds'])} seeds reach it)")
        if name == "ood":
            pr = rs["prior"]["per_seed"]
            for i, dr in enumerate(res["draws"]):
                best = max(sc, key=lambda n: sc[n]["per_seed"][i]["auc"])
                s_i = sc[best]["per_seed"][i]
                print(f"   draw seed {dr['seed']} {','.join(dr.get('held_out_benchmarks', []))[:60]:<60} {best} {s_i['auc']:.4f} "
                      f"prior {pr[i]['auc']:.4f} ({100*(s_i['auc']-pr[i]['auc']):+.2f}) max acc {s_i['max_accuracy']:.4f} BSM {dr['bsm_accuracy']:.4f}")
