// Live tail: listens to the explorer's server-sent events and adds one row
// per event. Text goes in with textContent only, never as markup.
(function () {
	"use strict";
	var table = document.getElementById("tail");
	var rows = document.getElementById("tail-rows");
	var status = document.getElementById("tail-status");
	var base = table.dataset.base;
	var keep = 500; // rows kept on the page
	var count = 0;

	function setStatus(state, text) {
		status.dataset.state = state;
		status.textContent = text;
	}
	function cell(tr, child) {
		var td = document.createElement("td");
		td.appendChild(child);
		tr.appendChild(td);
		return td;
	}
	function link(href, text, cls) {
		var a = document.createElement("a");
		a.href = href;
		a.textContent = text;
		if (cls) { a.className = cls; }
		return a;
	}
	function text(t, cls) {
		var s = document.createElement(cls === "payload" ? "code" : "span");
		s.textContent = t;
		if (cls) { s.className = cls; }
		return s;
	}
	function add(ev) {
		var tr = document.createElement("tr");
		tr.className = "event new";
		tr.dataset.sequence = ev.sequence;
		cell(tr, link(base + "/event/" + encodeURIComponent(ev.id), "#" + ev.sequence, "seq"));
		cell(tr, link(base + "/stream?entity=" + encodeURIComponent(ev.entity) + "&scope=" + encodeURIComponent(ev.scope), ev.entity, "entity"));
		cell(tr, text("v" + ev.version));
		var k = cell(tr, text(ev.kind, "kind"));
		if (ev.kind_name) {
			k.appendChild(document.createTextNode(" "));
			k.appendChild(text(ev.kind_name, "kindname"));
		}
		cell(tr, text(ev.timestamp, "time"));
		var p = JSON.stringify(ev.payload);
		if (p.length > 160) { p = p.slice(0, 159) + "…"; }
		cell(tr, text(p, "payload"));
		rows.insertBefore(tr, rows.firstChild);
		while (rows.children.length > keep) { rows.removeChild(rows.lastChild); }
		count++;
	}

	var source = new EventSource(table.dataset.source);
	source.addEventListener("hello", function (e) {
		var h = JSON.parse(e.data);
		setStatus("live", "live: following from #" + h.from + " (the log ends at #" + h.last_sequence + ")");
	});
	source.addEventListener("record", function (e) {
		add(JSON.parse(e.data));
		setStatus("live", "live: " + count + " event" + (count === 1 ? "" : "s") + " shown, newest first");
	});
	source.addEventListener("failure", function (e) {
		setStatus("failed", "the tail stopped: " + JSON.parse(e.data).error);
		source.close();
	});
	source.onerror = function () {
		if (source.readyState !== EventSource.CLOSED) {
			setStatus("reconnecting", "connection lost, reconnecting…");
		}
	};
})();
