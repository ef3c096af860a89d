"""Issue 11 target checks from routing_quality results JSON (means over seeds): python benchmarks/routing_targets.py benchmarks/results/routing_quality*.json"""
import json
import sys

BASE = {"logreg", "mlp", "knn-embed", "mf", "prior"}
for path in sys.argv[1:]:
    d = json.load(open(path)); S = d["settings"]
    print(f"== {d['dataset']} seeds {d['seeds']}")
    seen_best = None
    for name, res in S.items():
        rs = res["routers"]
        sc = {n: r for n, r in rs.items() if r["kind"] == "scope"}
        bl = {n: r for n, r in rs.items() if n in BASE}
        bs, bb = max(sc, key=lambda n: sc[n]["auc"]), max(bl, key=lambda n: bl[n]["auc"])
        if name == "seen": seen_best = sc[bs]["auc"]
        line = (f"{name:<15} best SCOPE {bs} {sc[bs]['auc']:.4f} | best baseline {bb} {bl[bb]['auc']:.4f} | "
                f"diff {100*(sc[bs]['auc']-bl[bb]['auc']):+.2f} pt")
        if res.get("unseen_models"):
            gap = 100 * (seen_best - sc[bs]["auc"]) if seen_best else float("nan")
            line += f" | AUROC {sc[bs].get('auroc') or float('nan'):.3f} | gap to seen {gap:.2f} pt"
            pm = sc[bs].get("per_model", {})
            line += " | bias " + " ".join(f"{v['bias']:+.3f}" for v in pm.values()) if pm else ""
        print(line)
        if name == "ood":
            pr = rs["prior"]["per_seed"]
            for i, dr in enumerate(res["draws"]):
                best = max(sc, key=lambda n: sc[n]["per_seed"][i]["auc"])
                s_i = sc[best]["per_seed"][i]
                print(f"   draw seed {dr['seed']} {','.join(dr.get('held_out_benchmarks', []))[:60]:<60} {best} {s_i['auc']:.4f} "
                      f"prior {pr[i]['auc']:.4f} ({100*(s_i['auc']-pr[i]['auc']):+.2f}) max acc {s_i['max_accuracy']:.4f} BSM {dr['bsm_accuracy']:.4f}")
