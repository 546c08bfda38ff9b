/* This file is part of the ISP suite.  The COPYRIGHT file at the top level of
   this repository contains the full copyright notices and license terms. */
/* The network map (docs/map.md): the GeoJSON of the route, clustered. */
(function () {
    'use strict';
    var element = document.getElementById('map');
    var data = element.dataset;
    var lang = document.documentElement.lang || 'en';
    // the zoom range is the map's own: without tiles (none configured,
    // offline) Leaflet has no maxZoom and the clusters refuse to work
    var map = L.map(element, {preferCanvas: false, worldCopyJump: true,
        minZoom: 2, maxZoom: 19});
    map.setView([0, 0], 2);
    if (data.tiles) {
        L.tileLayer(data.tiles, {
            maxZoom: 19, attribution: data.attribution}).addTo(map);
    }
    var clusters = L.markerClusterGroup({
        chunkedLoading: true, showCoverageOnHover: false,
        maxClusterRadius: 60, spiderfyOnMaxZoom: true});
    var routers = L.layerGroup();
    clusters.addTo(map);
    routers.addTo(map);
    var form = document.getElementById('filters');
    var count = document.getElementById('map-count');
    var fitted = false;
    var icons = {};

    function when(value) {
        if (!value) {
            return '-';
        }
        return new Date(value).toLocaleString(lang);
    }

    function row(list, label, value) {
        var dt = document.createElement('dt');
        dt.textContent = label;
        var dd = document.createElement('dd');
        if (value instanceof Node) {
            dd.appendChild(value);
        } else {
            dd.textContent = value || '-';
        }
        list.appendChild(dt);
        list.appendChild(dd);
    }

    function link(model, id, text) {
        var a = document.createElement('a');
        a.href = data.backoffice + model + '/' + id;
        a.target = '_blank';
        a.rel = 'noopener';
        a.textContent = text;
        return a;
    }

    function popup(p) {
        var box = document.createElement('div');
        box.className = 'map-popup';
        var list = document.createElement('dl');
        if (p.kind === 'router') {
            row(list, data.tRouter, link('isp.router', p.id, p.name));
            row(list, data.tStatus, data['t' + (p.status === 'online' ?
                'Online' : 'Offline')]);
            row(list, data.tLastSeen, when(p.last_seen));
        } else {
            row(list, data.tSubscriber, link('party.party', p.party, p.name));
            row(list, data.tService,
                link('isp.service', p.id, p.customer_id || String(p.id)));
            row(list, data.tPlan, p.plan);
            row(list, data.tStatus, data['t' + p.status.charAt(0)
                .toUpperCase() + p.status.slice(1)]);
            row(list, data.tSince, when(p.since));
            row(list, data.tLastSeen, when(p.last_seen));
        }
        box.appendChild(list);
        return box;
    }

    function marker(feature, latlng) {
        var p = feature.properties;
        var classes = 'isp-dot isp-marker ';
        if (p.kind === 'router') {
            classes += 'isp-router' + (p.status === 'online' ? '' :
                ' isp-router-down');
        } else {
            classes += 'isp-' + p.status;
        }
        // one icon per look, shared by the markers that have it
        var icon = icons[classes] || (icons[classes] = L.divIcon(
            {className: classes, iconSize: null, html: ''}));
        var m = L.marker(latlng, {
            icon: icon,
            title: p.kind === 'router' ? p.name :
                (p.customer_id || '') + ' ' + p.name,
            keyboard: true});
        m.bindPopup(function () {
            return popup(p);
        });
        return m;
    }

    function load() {
        var query = new URLSearchParams(new FormData(form)).toString();
        var started = performance.now();
        fetch(data.url + '?' + query, {credentials: 'same-origin'})
            .then(function (response) {
                if (!response.ok) {
                    throw new Error(response.status);
                }
                return response.json();
            })
            .then(function (collection) {
                var subscribers = [];
                clusters.clearLayers();
                routers.clearLayers();
                collection.features.forEach(function (feature) {
                    var c = feature.geometry.coordinates;
                    var m = marker(feature, L.latLng(c[1], c[0]));
                    if (feature.properties.kind === 'router') {
                        routers.addLayer(m);
                    } else {
                        subscribers.push(m);
                    }
                });
                clusters.addLayers(subscribers);
                count.textContent = subscribers.length + ' ' +
                    data.tSubscribers;
                if (!fitted && collection.features.length) {
                    var bounds = L.latLngBounds(collection.features.map(
                        function (f) {
                            var c = f.geometry.coordinates;
                            return [c[1], c[0]];
                        }));
                    map.fitBounds(bounds, {padding: [20, 20], maxZoom: 16});
                    fitted = true;
                }
                document.body.dataset.mapReady = String(subscribers.length);
                document.body.dataset.mapMs = String(
                    Math.round(performance.now() - started));
            })
            .catch(function () {
                var message = document.createElement('p');
                message.className = 'map-message';
                message.textContent = data.tError;
                document.body.appendChild(message);
                document.body.dataset.mapReady = 'error';
            });
    }

    form.addEventListener('change', function () {
        delete document.body.dataset.mapReady;
        load();
    });
    form.addEventListener('submit', function (event) {
        event.preventDefault();
    });
    load();
}());
